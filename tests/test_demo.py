"""The demo corpus is seeded and complete; the quick demo runs every step and passes its checks."""

import json
from collections import Counter

from fmaudit.demo.corpus import generate_corpus
from tests.conftest import run_cli


def test_demo_corpus_is_seeded_and_has_every_kind(tmp_path):
    a = generate_corpus(tmp_path / "a", docs=400, seed=3)
    b = generate_corpus(tmp_path / "b", docs=400, seed=3)
    c = generate_corpus(tmp_path / "c", docs=400, seed=4)
    files = lambda d: {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a") != files(tmp_path / "c")
    truth = [json.loads(l) for l in a["truth"].read_text().splitlines()]
    kinds = Counter(r["kind"] for r in truth)
    assert {"pii", "toxic", "identity", "gendered", "malformed", "duplicate"} <= set(kinds)
    assert {r["entity_type"] for r in truth if r["kind"] == "pii"} == {
        "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "ADDRESS", "CREDIT_CARD", "US_SSN", "IP_ADDRESS", "IBAN_CODE"}
    docs = {json.loads(l)["id"]: json.loads(l)["text"]
            for l in (tmp_path / "a" / "corpus" / "part-00000.jsonl").read_text(errors="replace").splitlines()
            if l.startswith('{"id": "demo')}
    spans = [r for r in truth if r["kind"] == "pii" and r["id"] in docs]
    assert spans and all(docs[r["id"]][r["start"]:r["end"]] == r["value"] for r in spans)
    # varied text: no sentence makes up more than a few percent of all sentences
    sentences = Counter(s for t in docs.values() for s in t.split(". "))
    assert sentences.most_common(1)[0][1] < 0.05 * sum(sentences.values())


def test_quick_demo(quick_demo):
    out = quick_demo["out"]
    assert quick_demo["exit_code"] == 0, quick_demo["stdout"][-3000:]
    printed = quick_demo["stdout"]
    assert "accounting_identity" in printed and "checks: PASSED" in printed
    summary = json.loads((out / "filtered" / "reports" / "summary.json").read_text())
    assert summary["passed"]
    combined = json.loads((out / "summary.json").read_text())  # every step's checks in one place
    assert {"pipeline", "train", "bias.pairs", "perplexity", "fairness"} <= set(combined["reports"]) and combined["passed"]
    assert "demographic_parity_difference" in printed  # the adapt step's trade-off table
    assert len(combined["checks"]) > len(summary["checks"])
    assert "train_loss.png" in (out / "summary.html").read_text()
    assert f"report: {out / 'report.html'}" in printed and (out / "MANIFEST.json").is_file()
    dedup = json.loads((out / "filtered" / "reports" / "dedup.json").read_text())["stages"]
    truth = dedup["dedup_near"]["truth"]  # the planted repeats (boilerplate, edited copies, repeated PII) removed
    assert truth["recall"] >= 0.9 and set(truth["by_kind"]) == {"boilerplate", "edited_copy", "repeated_pii"}


def test_demo_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert run_cli("demo", "--quick", "--out", tmp_path / "mine") == 2
    assert "not made by `fmaudit demo`" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
