"""The seeded synthetic demo corpus: varied English text with known problems injected.

``generate_corpus(out, docs, seed)`` writes ``out/corpus/part-00000.jsonl`` and
``out/corpus/part-00001.jsonl.gz`` and ``out/truth.jsonl``, one row per injected item:

- ``{"kind": "pii", "id", "entity_type", "value", "start", "end"}``: PII made by Faker (names, e-mails,
  phones, street addresses, credit cards, SSNs, IPs, IBANs), with its character span in the text;
- ``{"kind": "toxic", "id", "start", "end"}``: a plainly toxic comment inside the document;
- ``{"kind": "near_toxic", "id", "start", "end"}``: a rude comment scoring just under the demo's toxicity
  threshold, which the toxicity stage keeps;
- ``{"kind": "identity", "id", "group", "term"}``: a neutral mention of an identity term;
- ``{"kind": "gendered", "id"}``: the document holds gendered sentences;
- ``{"kind": "short", "id"}``: a fragment too short to be useful;
- ``{"kind": "malformed", "source", "line", "error_kind"}``: a record that must be quarantined;
- ``{"kind": "duplicate", "id", "of", "how"}``: repeated text (:mod:`fmaudit.demo.repeats`);
- ``{"kind": "canary", "id", "canary", "repetitions"}``: a copy of a corpus canary, a note holding a random
  secret repeated verbatim; ``out/canaries.json`` is its record for the ``privacy.canaries`` audit;
- ``{"kind": "secret", "id", "canary", "repetitions"}``: a page holding a spread secret (a wifi password
  pasted into several different pages), which no data stage removes; ``out/secrets.json`` is its record.

It also writes ``out/task/bios.csv``, the downstream task of the adapt step (:mod:`fmaudit.demo.bios`:
occupation from short biographies, with a planted gender disparity).

The same seed gives byte-identical files.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from faker import Faker

from fmaudit.core.canaries import write_record
from fmaudit.demo import text as T
from fmaudit.demo.repeats import SECRET_SHARE, plain_documents, plant_canaries, plant_repeats, plant_secrets
from fmaudit.demo.bios import write_bios_task

SECRETS_RECORD = "secrets.json"  # the spread secret's canary record (:func:`fmaudit.demo.repeats.plant_secrets`)

PII_TEMPLATES = {
    "PERSON": ["Our thanks go to {v} for the photographs.", "The interview was conducted by {v} last spring.",
               "Questions about this article can go to {v}."],
    "EMAIL_ADDRESS": ["Send corrections to {v} and we will update the page.", "Reach the organiser at {v}."],
    "PHONE_NUMBER": ["Call the front desk at {v} to book a table.", "For bookings, phone {v} before noon."],
    "ADDRESS": ["The workshop takes place at {v}.", "Parcels should be sent to {v}."],
    "CREDIT_CARD": ["The card ending the order was {v}, according to the receipt.", "Payment card: {v}."],
    "US_SSN": ["The form listed the social security number {v}.", "SSN on file: {v}."],
    "IP_ADDRESS": ["Suspicious logins came from {v} overnight.", "The server at {v} stopped responding."],
    "IBAN_CODE": ["Donations can be wired to IBAN {v}.", "Please transfer the deposit to {v}."],
}


def _fake_value(fake: Faker, entity: str) -> str:
    return {
        "PERSON": fake.name,
        "EMAIL_ADDRESS": fake.email,
        "PHONE_NUMBER": fake.phone_number,
        "ADDRESS": lambda: fake.address().replace("\n", ", "),
        "CREDIT_CARD": fake.credit_card_number,
        "US_SSN": fake.ssn,
        "IP_ADDRESS": fake.ipv4_public,
        "IBAN_CODE": fake.iban,
    }[entity]()


class _Builder:
    """Joins sentences into a document while recording the spans of injected pieces."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.truth: list[dict] = []

    def add(self, sentence: str) -> int:
        if self.parts:
            self.parts.append(" ")
            self.length += 1
        start = self.length
        self.parts.append(sentence)
        self.length += len(sentence)
        return start

    def add_slot(self, template: str, value: str, row: dict) -> None:
        start = self.add(template.replace("{v}", value)) + template.index("{v}")
        self.truth.append({**row, "value": value, "start": start, "end": start + len(value)})

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _topic_sentences(rng: random.Random, fake: Faker, topic: dict, k: int) -> list[str]:
    return [_fill(rng, fake, topic, s) for s in rng.sample(topic["sentences"], k=k)]


def _fill(rng: random.Random, fake: Faker, topic: dict, s: str) -> str:
    a = rng.choice(topic["words_a"])
    return s.format(a=a, A=a[:1].upper() + a[1:], b=rng.choice(topic["words_b"]), num=rng.randint(2, 40),
                    city=fake.city())


def make_document(i: int, rng: random.Random, fake: Faker) -> tuple[dict, list[dict]]:
    """One document and its ground-truth rows."""
    doc_id = f"demo-{i:06d}"
    b = _Builder()
    if rng.random() < 0.03:
        b.add(rng.choice(T.SHORT))
        return {"id": doc_id, "text": b.text, "meta": {"source": "demo", "topic": "fragment"}}, [
            {"kind": "short", "id": doc_id}]
    names = rng.sample(sorted(T.TOPICS), k=rng.choice((1, 1, 2)))
    sentences = [(s, None) for n in names for s in _topic_sentences(rng, fake, T.TOPICS[n], rng.randint(4, 8))]
    extras: list[tuple[str, dict]] = []
    if rng.random() < 0.35:
        for entity in rng.sample(sorted(PII_TEMPLATES), k=rng.randint(1, 3)):
            extras.append(("pii", {"kind": "pii", "id": doc_id, "entity_type": entity,
                                   "template": rng.choice(PII_TEMPLATES[entity]), "value": _fake_value(fake, entity)}))
    if rng.random() < 0.08:
        extras.append(("toxic", {"kind": "toxic", "id": doc_id, "sentence": rng.choice(T.TOXIC)}))
    if rng.random() < 0.12:
        group, term, sentence = rng.choice(T.IDENTITY)
        extras.append(("identity", {"kind": "identity", "id": doc_id, "group": group, "term": term,
                                    "sentence": sentence}))
    if rng.random() < 0.25:
        extras.append(("gendered", {"kind": "gendered", "id": doc_id,
                                    "sentences": rng.sample(T.GENDERED, k=rng.randint(1, 3))}))
    for extra in extras:
        sentences.insert(rng.randint(0, len(sentences)), (None, extra))
    for sentence, extra in sentences:
        if extra is None:
            b.add(sentence)
            continue
        kind, row = extra
        if kind == "pii":
            b.add_slot(row.pop("template"), row.pop("value"), row)
        elif kind == "toxic":
            sentence = row.pop("sentence")
            start = b.add("A reader commented: " + sentence) + len("A reader commented: ")
            b.truth.append({**row, "start": start, "end": start + len(sentence)})
        elif kind == "identity":
            b.add(row.pop("sentence"))
            b.truth.append(row)
        else:
            for s in row.pop("sentences"):
                b.add(s)
            b.truth.append(row)
    topic = names[0]
    return {"id": doc_id, "text": b.text, "meta": {"source": "demo", "topic": topic}}, b.truth


def plant_near_toxic(docs: list[dict], truth: list[dict], rng: random.Random) -> None:
    """End one plain document in a hundred with a rude comment just under the toxicity threshold
    (:data:`fmaudit.demo.text.NEAR_TOXIC`); append truth rows ``{"kind": "near_toxic", "id", "start", "end"}``."""
    plain = plain_documents(docs, truth)
    for doc in rng.sample(plain, k=min(len(plain), max(2, len(docs) // 100))):
        comment = rng.choice(T.NEAR_TOXIC)
        doc["text"] += " A reader commented: " + comment
        end = len(doc["text"])
        truth.append({"kind": "near_toxic", "id": doc["id"], "start": end - len(comment), "end": end})


def _malformed(first_id: str) -> list[tuple[bytes, str]]:
    """Malformed records, one of each kind the readers must quarantine; none carries PII. They are
    inserted after the first document, so the duplicate of ``first_id`` is the later occurrence."""
    return [
        (b'{"id": "broken-1", "text": "an unterminated record', "bad_json"),
        (json.dumps({"id": "broken-2", "meta": {"source": "demo"}}).encode(), "missing_text"),
        (json.dumps({"id": "broken-3", "text": 42}).encode(), "non_string_text"),
        (b'{"id": "broken-4", "text": "caf\xe9 latin-1 bytes"}', "invalid_utf8"),
        (json.dumps({"id": "broken-5", "text": "   "}).encode(), "empty_text"),
        (json.dumps({"id": first_id, "text": "A second record reusing an existing id."}).encode(),
         "duplicate_id"),
    ]


def generate_corpus(out: str | Path, docs: int = 2000, seed: int = 0, task_rows: int = 1200) -> dict:
    """Write the demo corpus and its ground truth under ``out``; returns paths and counts."""
    out = Path(out)
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    lines: list[bytes] = []
    truth: list[dict] = []
    ids: list[str] = []
    made: list[dict] = []
    for i in range(docs):
        doc, rows = make_document(i, rng, fake)
        made.append(doc)
        truth.extend(rows)
    repeats = plant_repeats(made, truth, rng, fake) if made else []
    for doc in repeats:  # at random places in the second half
        made.insert(rng.randint(len(made) // 2, len(made)), doc)
    canaries = plant_canaries(made, truth, random.Random(seed + 1)) if made else None  # own stream: rest unchanged
    secrets = plant_secrets(made, truth, random.Random(seed + 2), max(2, docs // SECRET_SHARE)) if made else None
    plant_near_toxic(made, truth, random.Random(seed + 3))
    for doc in made:
        lines.append(json.dumps(doc, ensure_ascii=False).encode("utf-8"))
        ids.append(doc["id"])
    bad = _malformed(ids[0] if ids else "none")
    positions = sorted(rng.sample(range(1, len(lines) + len(bad)), k=len(bad))) if lines else list(range(len(bad)))
    merged = list(lines)
    for pos, (raw, _) in zip(positions, bad):
        merged.insert(pos, raw)
    half = (len(merged) + 1) // 2
    files = [(out / "corpus" / "part-00000.jsonl", merged[:half]), (out / "corpus" / "part-00001.jsonl.gz", merged[half:])]
    bad_set = {raw: kind for raw, kind in bad}
    for path, chunk in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(line + b"\n" for line in chunk)
        if path.name.endswith(".gz"):
            with open(path, "wb") as raw_f, gzip.GzipFile(filename="", mode="wb", fileobj=raw_f, mtime=0) as gz:
                gz.write(data)
        else:
            path.write_bytes(data)
        for lineno, line in enumerate(chunk, 1):
            if line in bad_set:
                truth.append({"kind": "malformed", "source": path.relative_to(out).as_posix(), "line": lineno, "error_kind": bad_set[line]})
    task = write_bios_task(out / "task" / "bios.csv", rows=task_rows, seed=seed)  # downstream task of the adapt step
    truth_path = out / "truth.jsonl"
    if canaries is not None:
        write_record(out, canaries)
    if secrets is not None:
        write_record(out, secrets, name=SECRETS_RECORD)
    truth_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in truth), encoding="utf-8")
    planted = sum(1 for r in truth if r["kind"] == "canary")
    return {"corpus": out / "corpus", "truth": truth_path, "documents": docs + len(repeats) + planted,
            "repeats": len(repeats), "canary_copies": planted, "malformed": len(bad), "task": task,
            "canaries": out / "canaries.json" if canaries is not None else None,
            "secrets": out / SECRETS_RECORD if secrets is not None else None}
