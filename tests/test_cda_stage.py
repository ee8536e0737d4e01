"""The ``cda`` stage in the pipeline: augment and substitute modes, balance from merged stats, the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from fmaudit.corpus import Document, read_documents
from fmaudit.stages.cda import Cda, CdaSettings, substitute_draw
from fmaudit.stages.base import ReportContext
from fmaudit.stats import StageStats
from tests.conftest import run_cli, write_policy

TEXTS = [
    "He told his brother that the actor had left his keys with him.",
    "The committee met on Tuesday to discuss the budget.",
    "She gave her husband the map, and he thanked her.",
    "The king thanked his son for the gift.",
]


def _docs(n: int) -> list[Document]:
    return [Document(f"d{i}", TEXTS[i % len(TEXTS)], {"n": i}) for i in range(n)]


@pytest.fixture(scope="module")
def augment() -> Cda:
    stage = Cda(CdaSettings())
    stage.setup()
    return stage


def test_augment_adds_linked_twins(augment):
    stats = StageStats()
    res = augment.process(_docs(4), stats)
    assert [d.id for d in res.kept] == ["d0", "d1", "d2", "d3"] and res.kept[0].text == TEXTS[0]
    assert [d.id for d in res.added] == ["d0#cda", "d2#cda", "d3#cda"]
    twin = res.added[0]
    assert twin.text == "She told her sister that the actress had left her keys with her."
    assert twin.meta["counterfactual_of"] == "d0" and twin.meta["n"] == 0
    c = stats.counters
    assert (c["eligible"], c["changed"]) == (3, 3)
    # side 0 (male) terms: 6 in d0, 2 in d2, 3 in d3; side 1 (female): 3 in d2. Twins flip every term.
    assert (c["before:gender:0"], c["before:gender:1"]) == (11, 3)
    assert c["after:gender:0"] == c["after:gender:1"] == 14
    assert c["swap:gender:his>her"] == 3


def test_report_from_merged_shards_equals_one_pass(augment, tmp_path):
    docs = _docs(8)
    whole, a, b = StageStats(), StageStats(), StageStats()
    augment.process(docs, whole)
    augment.process(docs[:3], a)
    augment.process(docs[3:], b)
    a.merge(b)
    ctx = ReportContext(tmp_path, tmp_path)
    assert augment.report(a, ctx).details["balance"] == augment.report(whole, ctx).details["balance"]
    report = augment.report(whole, ctx)
    assert report.metrics["gender_ratio_before"] == pytest.approx(22 / 6)
    assert report.metrics["gender_ratio_after"] == 1.0
    assert {c.name: c.passed for c in report.checks} == {"gender_balance_not_worse": True}
    assert report.details["swaps_per_pair"]["gender:his>her"] == 6


def test_substitute_is_seeded_per_document_not_per_batch():
    stage = Cda(CdaSettings(mode="substitute", probability=0.5, seed=7, names=False))
    docs = [Document(f"doc-{i}", TEXTS[0]) for i in range(200)]
    one = stage.process(docs, StageStats())
    split = [d for part in (docs[:37], docs[37:150], docs[150:]) for d in stage.process(part, StageStats()).kept]
    assert [d.text for d in one.kept] == [d.text for d in split]
    assert not one.added
    swapped = [d for d in one.kept if d.text != TEXTS[0]]
    assert all(substitute_draw(7, d.id) < 0.5 for d in swapped)
    assert 70 <= len(swapped) <= 130
    assert swapped[0].meta["cda"]["mode"] == "substitute"
    other_seed = Cda(CdaSettings(mode="substitute", seed=8, names=False)).process(docs, StageStats())
    assert [d.text for d in other_seed.kept] != [d.text for d in one.kept]


def test_min_terms_and_imbalance_check(tmp_path):
    stage = Cda(CdaSettings(min_terms=3, mode="substitute", probability=0.0, max_imbalance_after=1.5))
    stats = StageStats()
    res = stage.process(_docs(4), stats)
    assert all(d.text == TEXTS[i] for i, d in enumerate(res.kept))
    checks = {c.name: c for c in stage.report(stats, ReportContext(tmp_path, tmp_path)).checks}
    assert not checks["gender_imbalance_after"].passed and checks["gender_imbalance_after"].value == pytest.approx(11 / 3)


def test_pipeline_run_writes_twins_and_report(tmp_path):
    corpus = tmp_path / "in.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in _docs(6)))
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "cda", "max_imbalance_after": 1.01}], shard_size=4)
    out = tmp_path / "out"
    assert run_cli("filter", corpus, "--policy", policy, "--out", out, "--workers", "1", "--no-progress") == 0
    docs = {d.id: d for d in read_documents([out / "data"])}
    assert set(docs) == {"d0", "d1", "d2", "d3", "d4", "d5", "d0#cda", "d2#cda", "d3#cda", "d4#cda"}
    assert docs["d4#cda"].meta["counterfactual_of"] == "d4"
    report = json.loads((out / "reports" / "cda.json").read_text())
    assert report["counts"]["added"] == 4
    assert report["details"]["balance"]["gender"]["after"]["ratio"] == 1.0
    assert report["samples"] and all(set(s) == {"kind", "id", "before", "after"} for s in report["samples"])


def test_cda_swap_command(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("She thanked her.\nHis car is his.\n"))
    assert run_cli("cda-swap") == 0
    assert capsys.readouterr().out == "He thanked him.\nHer car is hers.\n"


def test_cda_swap_policy_errors(tmp_path, capsys):
    no_cda = write_policy(tmp_path / "no_cda.yaml", [{"stage": "min_length"}])
    assert run_cli("cda-swap", "--policy", no_cda) == 2
    assert "no cda stage" in capsys.readouterr().err
    bad = write_policy(tmp_path / "bad.yaml", [{"stage": "cda", "axes": [{"name": "religion", "path": "nope.tsv"}]}])
    assert run_cli("cda-swap", "--policy", bad) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:" in err and "stages[0].axes[0].path" in err and "nope.tsv" in err


def test_shipped_policies_run_cda_last():
    from fmaudit.policy import load_policy

    root = Path(__file__).resolve().parents[1] / "policies"
    for name in ("default.yaml", "demo.yaml"):
        assert load_policy(root / name).stages[-1].name == "cda"


def test_twins_from_an_earlier_run_are_not_twinned_again(augment):
    first = augment.process(_docs(1), StageStats())
    stats = StageStats()
    again = augment.process(first.kept + first.added, stats)
    assert [d.id for d in again.kept] == ["d0", "d0#cda"] and not again.added
    assert again.kept[0].meta["cda"]["twin"] == "d0#cda"
    assert stats.counters["already_done"] == 2
    assert stats.counters["after:gender:0"] == stats.counters["after:gender:1"]


# The test's own gendered words (not the cda library's tables): pronouns, and nouns of the demo corpus's kinds.
MALE_PRONOUNS, FEMALE_PRONOUNS = r"he|him|his|himself", r"she|her|hers|herself"
MALE_NOUNS = r"man|men|boys?|fathers?|sons?|brothers?|husbands?|kings?|mr|uncles?|nephews?|grandfathers?|dad|" \
             r"actors?|gentlem[ae]n|boyfriends?|princes?|waiters?"
FEMALE_NOUNS = r"wom[ae]n|girls?|mothers?|daughters?|sisters?|wi(?:fe|ves)|queens?|mrs|ms|aunts?|nieces?|" \
               r"grandmothers?|mom|actress(?:es)?|lad(?:y|ies)|girlfriends?|princess(?:es)?|waitress(?:es)?"


def _gendered_counts(texts) -> dict[str, int]:
    """Occurrences of each group of the test's own word lists in ``texts`` (case-insensitive, whole words)."""
    import re

    groups = {"male_pronouns": MALE_PRONOUNS, "female_pronouns": FEMALE_PRONOUNS, "male_nouns": MALE_NOUNS,
              "female_nouns": FEMALE_NOUNS}
    patterns = {k: re.compile(rf"\b(?:{v})\b", re.IGNORECASE) for k, v in groups.items()}
    counts = dict.fromkeys(groups, 0)
    for text in texts:
        for k, pattern in patterns.items():
            counts[k] += len(pattern.findall(text))
    return counts


def test_demo_corpus_ratio_moves_to_parity(tmp_path):
    """Counted independently of the stage (the test's own word lists, over the corpus read as JSON lines and the
    documents written to data/): the demo corpus leans male, and after augmentation male and female pronouns,
    and male and female nouns, occur equally often; the report says the same."""
    import gzip

    from fmaudit.demo.corpus import generate_corpus

    generate_corpus(tmp_path / "demo", docs=120, seed=3)
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    assert run_cli("filter", tmp_path / "demo" / "corpus", "--policy", root / "policies" / "demo.yaml",
                   "--stages", "cda", "--out", out, "--workers", "1", "--no-progress") == 0
    metrics = json.loads((out / "reports" / "cda.json").read_text())["metrics"]
    assert metrics["gender_ratio_before"] > 2 and metrics["gender_ratio_after"] == 1.0
    assert metrics["added"] == metrics["changed"] > 10

    texts_in = []
    for path in sorted((tmp_path / "demo" / "corpus").iterdir()):
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # the demo corpus's deliberately bad records (quarantined by the run)
                if isinstance(record, dict) and isinstance(record.get("text"), str):
                    texts_in.append(record["text"])
    before = _gendered_counts(texts_in)
    after = _gendered_counts(d.text for d in read_documents([out / "data"]))
    assert before["male_pronouns"] > 2 * before["female_pronouns"] > 0, before
    assert before["male_nouns"] > before["female_nouns"] > 0, before
    # every twin turns each gendered word into one of the other side: originals plus twins are at parity
    assert after["male_pronouns"] == after["female_pronouns"] > before["male_pronouns"], (before, after)
    assert after["male_nouns"] == after["female_nouns"] > before["male_nouns"], (before, after)


def test_cda_swap_leaves_pii_tokens_alone(monkeypatch, capsys):
    lines = "<ENC:IBAN_CODE:abc_Ms_def>\n<PERSON> and <US_SSN:0123456789abcdef>: his <PHONE_NUMBER>.\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert run_cli("cda-swap") == 0
    assert capsys.readouterr().out == lines.replace("his", "her")


def test_twin_keeps_what_the_pii_stage_wrote_byte_for_byte(augment):
    """Tokens of every form and the recorded pseudonym spans (realistic names CDA would otherwise swap) are
    byte-equal in the twin, and the twin's recorded spans point at them."""
    from fmaudit.text.pii_marks import META_KEY, TOKEN

    text = ("She met John Smith at <ENC:IBAN_CODE:vTmF8He-x_Ms_Q> and Mr. Brown; her SSN is "
            "<US_SSN:0123456789abcdef>. John Smith gave her <PERSON>'s card, and he thanked her.")
    spans = sorted([[m.start(), m.end()] for m in TOKEN.finditer(text)]
                   + [[i, i + len("John Smith")] for i in (text.index("John"), text.rindex("John"))])
    doc = Document("p1", text, {META_KEY: spans})
    res = augment.process([doc], StageStats())
    twin = res.added[0]
    assert twin.text.startswith("He met John Smith at <ENC:IBAN_CODE:vTmF8He-x_Ms_Q> and Mrs. Brown; his SSN")
    assert [twin.text[s:e] for s, e in twin.meta[META_KEY]] == [text[s:e] for s, e in spans]
    assert TOKEN.findall(twin.text) == TOKEN.findall(text)


def test_trimmed_sentences_carry_the_pii_spans():
    from fmaudit.stages.toxicity.stage import cut_spans, remove_spans
    from fmaudit.text.pii_marks import shift_spans

    text = "  Awful words here.  Hello <ENC:X:ab> and Maria Lopez. Worse stuff!\tTail Ann Lee. "
    hits = [(2, 19), (55, 67)]
    new, cuts = cut_spans(text, hits)
    assert new == remove_spans(text, hits) == "Hello <ENC:X:ab> and Maria Lopez. Tail Ann Lee."
    kept = [text.index(w) for w in ("<ENC", "Maria", "Ann")]
    spans = [(kept[0], kept[0] + 10), (kept[1], kept[1] + 11), (kept[2], kept[2] + 7)]
    assert [new[s:e] for s, e in shift_spans(spans + [(3, 8)], cuts)] == ["<ENC:X:ab>", "Maria Lopez", "Ann Lee"]
