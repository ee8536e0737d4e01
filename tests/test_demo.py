"""The demo corpus is seeded and complete; the quick demo runs every step and passes its checks."""

import json
from collections import Counter

from fmaudit.corpus import read_documents
from fmaudit.demo import text as T
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
    assert {"pii", "toxic", "near_toxic", "identity", "gendered", "malformed", "duplicate", "canary", "secret"} <= set(kinds)
    assert {r["entity_type"] for r in truth if r["kind"] == "pii"} == {
        "PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "ADDRESS", "CREDIT_CARD", "US_SSN", "IP_ADDRESS", "IBAN_CODE"}
    docs = {json.loads(l)["id"]: json.loads(l)["text"]
            for l in (tmp_path / "a" / "corpus" / "part-00000.jsonl").read_text(errors="replace").splitlines()
            if l.startswith('{"id": "demo')}
    spans = [r for r in truth if r["kind"] == "pii" and r["id"] in docs]
    assert spans and all(docs[r["id"]][r["start"]:r["end"]] == r["value"] for r in spans)
    rude = [r for r in truth if r["kind"] == "near_toxic" and r["id"] in docs]
    assert rude and all(docs[r["id"]][r["start"]:r["end"]] in T.NEAR_TOXIC for r in rude)
    # the spread secret: each one pasted into several different pages, listed in its canary record
    secrets = {c["id"]: c for c in json.loads((tmp_path / "a" / "secrets.json").read_text())["canaries"]}
    hosts = [r for r in truth if r["kind"] == "secret"]
    assert len({r["id"] for r in hosts}) == len(hosts) == sum(c["repetitions"] for c in secrets.values())
    assert all(docs[r["id"]].startswith(secrets[r["canary"]]["text"]) for r in hosts if r["id"] in docs)
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
    # the before/after step: a model trained on the raw corpus against the demo model, same audits, paired
    compare = json.loads((out / "compare" / "reports" / "compare.json").read_text())
    rows = compare["details"]["comparisons"]
    assert {k.split(":")[0] for k in rows} == {"bias.counterfactual", "toxicity.generation", "privacy.canaries",
                                              "privacy.regurgitation"}
    assert all(0 <= r["q_value"] <= 1 and r["n"] > 0 for r in rows.values())
    table = printed[printed.index("before/after:"):]
    assert "metric" in table.splitlines()[1] and "filtered" in table.splitlines()[1]
    for key in ("bias.counterfactual:gap_mean", "privacy.canaries:exposure_rank_max", "privacy.regurgitation:leak_rate"):
        row = rows[key]
        line = next(l for l in table.splitlines() if l.split()[:1] == [key])
        assert f"{row['before']:.4g}" in line and f"{row['after']:.4g}" in line and f"{row['q_value']:.3g}" in line
        assert ("*" in line) == row["significant"]
    # the raw model read the canary's 10 copies, the demo model the one that exact dedup kept
    canary_truth = [r for r in map(json.loads, (out / "truth.jsonl").read_text().splitlines()) if r["kind"] == "canary"]
    kept = {d.id for d in read_documents([out / "filtered" / "data"])}
    assert len(canary_truth) == 50 and sum(r["id"] in kept for r in canary_truth) <= 5
    # the rude comments just under the toxicity threshold get through, as planted
    rude = [r for r in map(json.loads, (out / "truth.jsonl").read_text().splitlines()) if r["kind"] == "near_toxic"]
    texts = {d.id: d.text for d in read_documents([out / "filtered" / "data"])}
    assert rude and all(r["id"] in texts and texts[r["id"]].endswith(tuple(T.NEAR_TOXIC)) for r in rude)


def test_comparison_table_marks_significant_changes():
    from fmaudit.audits.base import CheckSpec
    from fmaudit.demo.compare_step import format_comparison

    row = dict(test="paired_bootstrap", n=20, ci_low=-0.9, ci_high=-0.2)
    rows = {"bias.counterfactual:gap_mean": {**row, "before": 1.2, "after": 0.6, "delta": -0.6, "q_value": 0.004,
                                             "significant": True},
            "bias.counterfactual:gap_mean.nurse": {**row, "before": 1.0, "after": 0.9, "delta": -0.1, "q_value": 0.5,
                                                   "significant": False},
            "privacy.regurgitation:leak_rate": {**row, "before": 0.1, "after": 0.2, "delta": 0.1, "q_value": 0.3,
                                                "significant": False}}
    gates = {"bias.counterfactual": {"gap_mean": CheckSpec(threshold=2.0, direction="max")}}
    lines = format_comparison(rows, gates, 0.05).splitlines()
    assert lines[0].split() == ["metric", "raw", "filtered", "delta", "95%", "CI", "test", "q"]
    assert lines[2].startswith("bias.counterfactual:gap_mean ") and lines[2].endswith("* better")
    assert "1.2" in lines[2] and "0.6" in lines[2] and "-0.6" in lines[2] and "0.004" in lines[2]
    assert not any("gap_mean.nurse" in l for l in lines)  # per-group rows stay in the report
    assert lines[3].startswith("privacy.regurgitation:leak_rate") and "*" not in lines[3]
    assert "over the 3 metrics" in lines[-1]


def test_demo_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert run_cli("demo", "--quick", "--out", tmp_path / "mine") == 2
    assert "not made by `fmaudit demo`" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
