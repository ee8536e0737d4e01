"""PII outside the text: meta strings (extra top-level fields included) are scanned and rewritten like the
text (a policy setting says which); an id with PII never reaches the ledger."""

from __future__ import annotations

import json

from tests.test_pii import TEXT, analyzer, pii_key, settings  # noqa: F401 (fixtures)

EMAIL = "maria.lopez@example.org"


def _stage(settings, **update):
    from fmaudit.pii.operators import Rewriter
    from fmaudit.stages.pii import PiiStage

    s = settings.model_copy(update={"max_density": None, **update})
    stage = PiiStage(s)
    stage.key, stage.write_ledger = pii_key(), True  # setup() with the shared analyzer
    stage.rewriter = Rewriter(s, pii_key())
    return stage


def test_meta_strings_and_ids_are_scanned(analyzer, settings):  # noqa: F811
    from fmaudit.corpus import Document
    from fmaudit.stats import StageStats

    stage = _stage(settings)
    stage.analyzer = analyzer
    meta = {"author": {"contact": f"mail {EMAIL} or 212-555-0147"}, "tags": ["news", f"from {EMAIL}"], "n": 3}
    docs = [Document(f"{EMAIL}/post-1", TEXT, meta), Document("post-2", TEXT, {"url": "https://example.org/x"})]
    stats = StageStats()
    res = stage.process(docs, stats)
    out = {d.id: d for d in res.kept}
    dumped = json.dumps(out[f"{EMAIL}/post-1"].meta)
    assert EMAIL not in dumped and "212-555-0147" not in dumped  # at any depth, in lists too
    assert out[f"{EMAIL}/post-1"].meta["n"] == 3 and out[f"{EMAIL}/post-1"].meta["tags"][0] == "news"
    assert docs[0].meta["author"]["contact"].startswith("mail maria")  # the input is not changed in place
    ledger_ids = {r["id"] for r in res.side["ledger"]}
    assert "post-2" in ledger_ids  # scanned and clean: kept as it is
    assert not any(EMAIL in i for i in ledger_ids)
    assert any(i.startswith("hashed:") for i in ledger_ids)
    assert stats.counters["meta_found:EMAIL_ADDRESS"] == 2 and stats.counters["ids_hashed_in_ledger"] == 1

    only = _stage(settings, meta_fields=["tags"], scan_ids=False)
    only.analyzer = analyzer
    res = only.process([Document("post-3", TEXT, meta)], StageStats())
    (doc,) = res.kept
    assert EMAIL in doc.meta["author"]["contact"] and EMAIL not in json.dumps(doc.meta["tags"])
    assert all(r["id"].startswith("hashed:") for r in res.side["ledger"])  # unscanned ids are never written


def test_pseudonym_memory_ignores_case_and_spacing():
    """One person written "Maria Lopez", "MARIA LOPEZ" and "Maria  Lopez" is one surrogate, with or without a
    key; another person is another surrogate."""
    from fmaudit.pii.operators import Pseudonymizer

    for key in (None, pii_key()):
        surrogate = Pseudonymizer(key).for_document("doc-1")
        same = {surrogate("PERSON", v) for v in ("Maria Lopez", "MARIA LOPEZ", "Maria  Lopez", "maria lopez")}
        assert len(same) == 1
        assert surrogate("PERSON", "John Smith") not in same


def test_ner_guesses_on_ids_do_not_hash_them():
    """spaCy tags some identifier-like strings ("demo-000051") as PERSON: ids are judged by the pattern and list
    recognizers only, so the ledger keeps them (a hashed id cannot be joined with ground truth or a trace)."""
    from fmaudit.corpus import Document
    from fmaudit.stages.pii import PiiSettings, PiiStage
    from fmaudit.stats import StageStats

    stage = PiiStage(PiiSettings(demo_key=True))
    stage.setup()
    docs = [Document(f"demo-0000{i}", f"Reach me at person{i}@example.com about the order.") for i in (51, 60, 66, 68)]
    res = stage.process(docs, StageStats())
    assert {r["id"] for r in res.side["ledger"]} == {d.id for d in docs}
