"""The ``pii`` stage on real presidio calls: operators, encryption round trip, pseudonym consistency, custom
recognizers from YAML, chunk boundaries, density drops, and a demo-corpus run whose every output and report
file is scanned for the injected PII values."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT, run_cli

KEY = "test-key-0123456789abcdef"
TEXT = ("Our new coordinator is Maria Lopez. Write to maria.lopez@example.org or call 212-555-0147. "
        "Maria Lopez answers mail from maria.lopez@example.org within a day; her SSN is 536-22-8726.")


@pytest.fixture(scope="module")
def settings():
    from fmaudit.policy import load_policy

    return next(s.settings for s in load_policy(ROOT / "policies" / "demo.yaml").stages if s.name == "pii")


@pytest.fixture(scope="module")
def analyzer(settings):
    from fmaudit.pii.analyze import BatchAnalyzer

    return BatchAnalyzer(settings)


def pii_key(secret: str = KEY):
    from fmaudit.pii.keys import PiiKey

    return PiiKey(secret.encode(), "test")


def rewrite(analyzer, settings, text: str, operators: dict, key=None, doc_id: str = "d1") -> str:
    from fmaudit.pii.operators import Rewriter
    from fmaudit.pii.spans import resolve_spans

    s = settings.model_copy(update={"operators": {k: _op(v) for k, v in operators.items()}})
    spans = resolve_spans(analyzer.analyze([text])[0])
    return Rewriter(s, key).rewrite(doc_id, text, spans)


def _op(value):
    from fmaudit.stages.pii.settings import OperatorSpec

    return OperatorSpec.model_validate(value)


def test_replace_mask_hash_keep(analyzer, settings):
    ops = {"PERSON": "replace", "EMAIL_ADDRESS": {"operator": "mask", "keep_last": 4}, "PHONE_NUMBER": "hash",
           "US_SSN": "keep"}
    out = rewrite(analyzer, settings, TEXT, ops, pii_key())
    assert "Maria Lopez" not in out and out.count("<PERSON>") == 2
    assert "maria.lopez@example.org" not in out and out.count("*" * 19 + ".org") == 2
    hashed = re.findall(r"<PHONE_NUMBER:([0-9a-f]{16})>", out)
    assert len(hashed) == 1 and "212-555-0147" not in out
    assert "536-22-8726" in out  # keep
    again = rewrite(analyzer, settings, TEXT, ops, pii_key())
    other = rewrite(analyzer, settings, TEXT, ops, pii_key("another-key-0123456789"))
    assert again == out  # the salted hash is a function of key and value
    assert re.findall(r"<PHONE_NUMBER:([0-9a-f]{16})>", other) != hashed


def test_encrypt_decrypt_round_trip(analyzer, settings, monkeypatch, capsys):
    from fmaudit.pii.operators import decrypt_text

    out = rewrite(analyzer, settings, TEXT, {"DEFAULT": "encrypt"}, pii_key())
    assert "maria.lopez@example.org" not in out and "Maria Lopez" not in out
    assert len(re.findall(r"<ENC:EMAIL_ADDRESS:", out)) == 2
    from fmaudit.pii.cipher import WrongKey

    restored, n = decrypt_text(out, pii_key())
    assert restored == TEXT and n == 6
    assert rewrite(analyzer, settings, TEXT, {"DEFAULT": "encrypt"}, pii_key()) == out  # deterministic
    with pytest.raises(WrongKey):
        decrypt_text(out, pii_key("the-wrong-key-0123456789"))
    monkeypatch.setenv("FMAUDIT_PII_KEY", KEY)
    capsys.readouterr()
    assert run_cli("pii", "decrypt", "--text", out) == 0
    assert capsys.readouterr().out.strip() == TEXT
    monkeypatch.setenv("FMAUDIT_PII_KEY", "the-wrong-key-0123456789")
    assert run_cli("pii", "decrypt", "--text", out) == 2


def test_pseudonyms_consistent_within_document(analyzer, settings):
    ops = {"DEFAULT": "pseudonymize"}
    out = rewrite(analyzer, settings, TEXT, ops, None, doc_id="a")
    assert "Maria Lopez" not in out and "maria.lopez@example.org" not in out
    name = re.search(r"coordinator is (.+?)\. Write", out).group(1)
    emails = re.findall(r"[\w.+-]+@[\w-]+\.[\w.]+", out)
    assert out.count(name) == 2, out  # the same person is the same surrogate twice
    assert len(emails) == 2 and emails[0] == emails[1] != "maria.lopez@example.org"
    assert rewrite(analyzer, settings, TEXT, ops, None, doc_id="a") == out  # reproducible
    from fmaudit.pii.operators import Rewriter
    from fmaudit.pii.spans import resolve_spans

    s = settings.model_copy(update={"operators": {"DEFAULT": _op("pseudonymize")}})
    text, written = Rewriter(s, None).rewrite_with_spans("a", TEXT, resolve_spans(analyzer.analyze([TEXT])[0]))
    values = [text[a:b] for a, b in written]  # the spans later stages must leave alone
    assert text == out and len(written) == 6 and values.count(name) == 2 and values.count(emails[0]) == 2
    keyed_a = rewrite(analyzer, settings, TEXT, ops, pii_key(), doc_id="a")
    keyed_b = rewrite(analyzer, settings, TEXT, ops, pii_key(), doc_id="b")
    assert keyed_a == keyed_b  # with a key: consistent across documents


def test_custom_recognizers_from_yaml(tmp_path):
    from fmaudit.errors import PolicyError
    from fmaudit.pii.analyze import BatchAnalyzer
    from fmaudit.policy import load_policy

    policy = tmp_path / "p.yaml"
    policy.write_text("""version: 1
name: custom
stages:
  - stage: pii
    entities: [EMAIL_ADDRESS]
    recognizers:
      - name: employee_id
        entity_type: EMPLOYEE_ID
        patterns: [{name: emp, regex: '\\bE-\\d{6}\\b', score: 0.3}]
        context: [employee, badge]
      - name: codenames
        entity_type: CODENAME
        deny_list: [Project Bluebird]
      - name: cards
        entity_type: CREDIT_CARD
        checksum: luhn
        patterns: [{name: digits, regex: '\\b\\d{12}\\b', score: 0.3}]
""")
    s = load_policy(policy).stages[0].settings
    found = BatchAnalyzer(s).analyze([
        "The employee badge E-204311 opens Project Bluebird. Order E-999999 shipped. Cards 676218916341 and "
        "676218916342."])[0]
    got = sorted((r.entity_type, r.start) for r in found)
    text_types = [t for t, _ in got]
    assert text_types.count("EMPLOYEE_ID") == 1  # the second id has no context word, scores 0.3 < 0.4
    assert "CODENAME" in text_types and text_types.count("CREDIT_CARD") == 1  # only the Luhn-valid number
    policy.write_text(policy.read_text().replace("'\\bE-\\d{6}\\b'", "'E-(\\d{6}'"))
    with pytest.raises(PolicyError, match=r"p\.yaml:\d+: stages\[0\]\.recognizers\[0\]\.patterns\[0\]\.regex"):
        load_policy(policy)


def test_chunk_boundaries_lose_nothing(analyzer, settings):
    from fmaudit.pii.chunks import plan_chunks

    filler = "The committee met again on Tuesday to discuss the budget for the coming year and the plans. "
    pieces = []
    for i in range(40):
        pieces.append(filler * 2)
        pieces.append(f"Reach Daniel Okafor at d.okafor{i}@example.com or 415-555-{1000 + i}. ")
    text = "".join(pieces)
    small = settings.model_copy(update={"chunk_chars": 1000, "chunk_overlap": 200})
    chunks = plan_chunks(text, 1000, 200)
    assert len(chunks) > 10 and chunks[0].own_start == 0 and chunks[-1].own_end == len(text)
    assert all(a.own_end == b.own_start for a, b in zip(chunks, chunks[1:]))
    assert all(c.end - c.start <= 1000 for c in chunks)
    whole = sorted((r.start, r.end, r.entity_type) for r in analyzer.analyze([text])[0])
    analyzer.settings = small
    try:
        chunked = sorted((r.start, r.end, r.entity_type) for r in analyzer.analyze([text])[0])
    finally:
        analyzer.settings = settings
    assert chunked == whole
    assert sum(t == "EMAIL_ADDRESS" for *_, t in chunked) == 40
    cut = [c.own_end for c in chunks[:-1]]
    assert any(s < b < e for s, e, _ in chunked for b in cut), "no finding straddles a chunk cut"


def test_missing_key_is_an_input_error(monkeypatch, tmp_path):
    """Without a key, hash/encrypt operators stop the run with exit 2 naming the variable, before any work."""
    from fmaudit.errors import InputError
    from fmaudit.stages.pii.settings import PiiSettings
    from fmaudit.stages.pii import PiiStage
    from tests.conftest import write_policy

    monkeypatch.setenv("FMAUDIT_PII_KEY", "short")
    with pytest.raises(InputError, match="at least 16"):
        PiiStage(PiiSettings(operators={"DEFAULT": "encrypt"})).preflight()
    monkeypatch.delenv("FMAUDIT_PII_KEY", raising=False)
    stage = PiiStage(PiiSettings(operators={"DEFAULT": "encrypt"}))
    with pytest.raises(InputError, match="FMAUDIT_PII_KEY"):
        stage.preflight()
    with pytest.raises(InputError, match="FMAUDIT_PII_KEY"):
        stage.setup()
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "text": f"Mail me at a{i}@example.com."}) + "\n"
                              for i in range(4)))
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "pii", "operators": {"DEFAULT": "hash"}}], shard_size=2)
    assert run_cli("filter", corpus, "--policy", policy, "--out", tmp_path / "out", "--workers", "2",
                   "--no-progress") == 2
    assert not (tmp_path / "out" / "data").exists()  # stopped before any work


def test_density_drop_keeps_the_dropped_text_anonymized(analyzer, settings):
    from fmaudit.corpus import Document
    from fmaudit.pii.operators import Rewriter
    from fmaudit.stages.pii import PiiStage
    from fmaudit.stats import StageStats

    s = settings.model_copy(update={"max_density": 0.3})
    stage = PiiStage(s)
    stage.key, stage.write_ledger = pii_key(), True  # setup() with the shared analyzer
    stage.analyzer, stage.rewriter = analyzer, Rewriter(s, pii_key())
    dense = Document("dense", "a@example.com, b@example.org, c@example.net, d@example.com")
    plain = Document("plain", TEXT + " The office is open on weekdays and closed on public holidays." * 3)
    stats = StageStats()
    res = stage.process([dense, plain], stats)
    assert [d.id for d in res.kept] == ["plain"]
    (doc, reason), = res.dropped
    assert reason == "pii_density" and not set(dense.text.split(", ")) & set(doc.text.split(", "))
    rows = res.side["ledger"]
    assert {r["entity_type"] for r in rows if r["id"] == "plain"} >= {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"}
    assert all(re.fullmatch(r"[0-9a-f]{32}", it["hash"]) for r in rows for it in r["items"])
    assert stats.counters["found:EMAIL_ADDRESS"] == 6


def test_demo_run_leaks_no_injected_pii(tmp_path, monkeypatch):
    """Every file the run writes (data, ledger, reports, job state) is scanned for every injected value."""
    from fmaudit.demo.corpus import generate_corpus
    from fmaudit.pii.evaluate import load_truth, missed_items
    from fmaudit.pipeline.runner import run_filter
    from fmaudit.policy import load_policy

    monkeypatch.delenv("FMAUDIT_PII_KEY", raising=False)  # the demo policy's public demo key
    generate_corpus(tmp_path / "demo", docs=120, seed=3)
    truth = tmp_path / "demo" / "truth.jsonl"
    out = tmp_path / "run"
    result = run_filter(load_policy(ROOT / "policies" / "demo.yaml"), [tmp_path / "demo" / "corpus"], out,
                        stages=["pii"], workers=1, truth=truth, progress=False)
    values = {r["value"] for rows in load_truth(truth).values() for r in rows}
    assert len(values) > 60
    missed = {r["value"] for r in missed_items(truth, out)}
    report = json.loads((out / "reports" / "pii.json").read_text())
    assert report["metrics"]["recall"] >= 0.97 and len(missed) <= 0.03 * len(values)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any("pii_ledger" in str(p) for p in files) and (out / "reports" / "pii_density.png").exists()
    for path in files:
        if path.suffix == ".png":
            continue
        content = path.read_text(encoding="utf-8")
        leaked = {v for v in values if v in content}
        allowed = missed if path.parent.name in ("data", "dropped", "held") else set()
        assert leaked <= allowed, f"{path.relative_to(out)} holds raw PII: {sorted(leaked - allowed)[:3]}"
    assert set(report["details"]["truth"]["recall_by_type"]) >= {"PERSON", "EMAIL_ADDRESS", "ADDRESS", "IBAN_CODE"}
    by_type = report["details"]["by_entity_type"]
    assert set(by_type["CREDIT_CARD"]["operators"]) == {"encrypt"} and set(by_type["US_SSN"]["operators"]) == {"hash"}
    assert report["metrics"]["docs_touched"] >= len(load_truth(truth)) - len(missed)
    assert result.exit_code == 0
    assert run_cli("eval", "pii", out, "--truth", truth, "--min-recall", "0.97") == 0
    assert run_cli("pii", "decrypt", "--demo-key", out / "data", "--out", tmp_path / "plain") == 0
    # the job folder holds data/00000.jsonl, pii_ledger/00000.jsonl, ...: same names, refused before writing
    assert run_cli("pii", "decrypt", "--demo-key", out, "--out", tmp_path / "clash") == 2
    assert not (tmp_path / "clash").exists()
    cards = {r["value"] for rows in load_truth(truth).values() for r in rows if r["entity_type"] == "CREDIT_CARD"}
    restored = "".join(p.read_text() for p in (tmp_path / "plain").iterdir())
    assert cards and all(c in restored for c in cards - missed)
    # every ciphertext decrypts to exactly one injected value of its type
    from fmaudit.pii.cipher import ENCRYPTED, decrypt_token
    from fmaudit.pii.keys import DEMO_KEY

    by_type = {}
    for rows in load_truth(truth).values():
        for r in rows:
            by_type.setdefault(r["entity_type"], set()).add(r["value"])
    tokens = ENCRYPTED.findall("".join(p.read_text() for p in (out / "data").iterdir()))
    assert len(tokens) >= 10 and {t for t, _ in tokens} == {"CREDIT_CARD", "IBAN_CODE"}
    assert all(decrypt_token(DEMO_KEY, t, payload) in by_type[t] for t, payload in tokens)


def test_focused_ner_finds_what_full_ner_finds(analyzer):
    """NER on windows around capitalized words gives the same entities as NER over the whole text, but for
    the lone ordinary words opening a sentence that the model tags as names ("Mulch keeps the roots cool")."""
    from fmaudit.pii.analyze import NER_MARGIN, token_texts
    from fmaudit.pii.ner_focus import WHOLE_ABOVE, Vocabulary, candidates, windows

    vocab = Vocabulary(stop=frozenset({"the"}), common=frozenset({"the", "cat", "meet", "work", "agree", "i", "mulch",
                                                                  "rose"}),
                       suffixes=(("s", ""), ("et", "eet")), names=frozenset({"Rose", "Smith"}))
    tokens = ["The", "cat", "met", "Ann", ".", "Mulch", "works", ";", "I", "agree", "orjson", ".", "Rose", "works",
              ".", "Mulch", "Smith", "."]
    assert candidates(tokens, vocab) == [3, 10, 12, 15, 16]  # a known name, or a capitalized word after it, stays
    no_lists = Vocabulary(vocab.stop, vocab.words, vocab.suffixes)  # no name lists: every opener but stop words
    assert candidates(tokens, no_lists) == [3, 5, 10, 12, 15, 16]
    filler = "the committee met again to discuss the budget for the coming year and the plans for the hall. "
    texts = [(filler * 4 + f"The review was written by Ana Beltran for {city} last week. " + filler * 4 +
              "A reader wrote: Shut up, you pathetic moron, nobody asked. Mulch keeps the roots cool. ") * 2
             for city in ("Lyon", "the town of Ames", "Ghent")]
    for text in texts:  # the windows really leave text out
        doc = analyzer.nlp.make_doc(text)
        toks = token_texts(doc, text)[0]
        covered = sum(b - a for a, b in windows(len(doc), candidates(toks, analyzer.words), NER_MARGIN))
        assert covered < WHOLE_ABOVE * len(doc)
    focused = analyzer.analyze(texts)
    words, analyzer.words = analyzer.words, None
    try:
        full = analyzer.analyze(texts)
    finally:
        analyzer.words = words
    key = lambda rs: {(r.start, r.end, r.entity_type) for r in rs}  # noqa: E731
    for text, f, g in zip(texts, focused, full):
        assert key(f) <= key(g)  # nothing found that full NER does not find
        assert {text[s:e] for s, e, _ in key(g) - key(f)} == {"Mulch"}  # and only the lone opener lost
    assert all(sum(r.entity_type == "PERSON" for r in found) >= 2 for found in full)


def test_recall_joins_findings_of_documents_whose_id_was_hashed(tmp_path):
    """An id like demo-000405 reads as a phone number to some regions' patterns, so the stage writes it to the
    ledger hashed; recall joins those findings back with the run's key (without it they counted as missed)."""
    import json

    from fmaudit.pii.evaluate import evaluate
    from fmaudit.pii.keys import PiiKey
    from fmaudit.pii.ledger import value_hash

    key = PiiKey(b"k" * 32, "test")
    (tmp_path / "data").mkdir()
    (tmp_path / "pii_ledger").mkdir()
    (tmp_path / "data" / "00000.jsonl").write_text(json.dumps({"id": "demo-000405", "text": "call <PHONE_NUMBER>"}) + "\n")
    row = {"id": "hashed:" + value_hash(key, "DOCUMENT_ID", "demo-000405"), "entity_type": "PHONE_NUMBER",
           "operator": "mask", "count": 1, "items": [{"start": 5, "end": 17, "hash": "x"}]}
    (tmp_path / "pii_ledger" / "00000.jsonl").write_text(json.dumps(row) + "\n")
    truth = tmp_path / "truth.jsonl"
    truth.write_text(json.dumps({"kind": "pii", "id": "demo-000405", "entity_type": "PHONE_NUMBER",
                                 "value": "555 0100 2000", "start": 5, "end": 17}) + "\n")
    assert evaluate(truth, tmp_path, key)["recall"] == 1.0
    assert evaluate(truth, tmp_path)["recall"] == 0.0
    assert evaluate(truth, tmp_path, PiiKey(b"o" * 32, "other"))["recall"] == 0.0
