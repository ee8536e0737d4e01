"""Checks seen failing, and faults injected: the accounting identity fails when a document is lost past the
worker's own check; a shard commit killed after any of its renames resumes to the same bytes (side outputs
included); report samples of a non-pii stage hold no PII; ``fmaudit eval pii`` and the toxicity
precision/recall checks exit 1 when the figures are bad."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy
from tests.conftest import ROOT, long_text, make_corpus, read_tree, run_cli, write_policy


def test_the_identity_check_fails_when_a_document_is_lost(tmp_path, monkeypatch, mixed_corpus):
    """With the worker's per-batch check out of the way, a stage that loses a document makes the pipeline's
    accounting_identity check fail (exit 1): the identity compares outcomes with what was read."""
    from fmaudit.stages import register
    from fmaudit.stages.base import Stage, StageResult

    @register
    class LosesOne(Stage):
        name = "loses_one_for_test"

        def process(self, docs, stats):
            return StageResult(kept=docs[1:])

    monkeypatch.setattr("fmaudit.pipeline.worker._check_accounting", lambda *args: None)
    policy = load_policy(write_policy(tmp_path / "p.yaml", [{"stage": "loses_one_for_test"}], shard_size=100,
                                      samples=0, max_quarantine_fraction=None))
    result = run_filter(policy, [mixed_corpus], tmp_path / "o", workers=1, progress=False)
    checks = {c["name"]: c for c in json.loads((tmp_path / "o" / "reports" / "pipeline.json").read_text())["checks"]}
    assert not checks["accounting_identity"]["passed"] and result.exit_code == 1
    assert checks["accounting_identity"]["value"] == checks["accounting_identity"]["threshold"] - 1  # one batch, one lost


KILL_SCRIPT = r'''
import os, sys
from fmaudit.stages import register
from fmaudit.stages.base import Stage, StageResult

@register
class SideRows(Stage):
    """Keeps every document and writes one side row per document (like the pii ledger)."""
    name = "side_rows_for_test"

    def process(self, docs, stats):
        return StageResult(kept=docs, side={"rows": [{"id": d.id, "chars": len(d.text)} for d in docs]})

exit_after = int(sys.argv[4])
if exit_after:  # the shard commit's renames (layout.py's own os.replace calls) are counted
    import types
    import fmaudit.pipeline.layout as layout
    calls = [0]

    def replace(src, dst):
        os.replace(src, dst)
        calls[0] += 1
        if calls[0] == exit_after:
            os._exit(9)  # as kill -9 right after this rename

    proxy = types.ModuleType("os")
    proxy.__dict__.update(os.__dict__)
    proxy.replace = replace
    layout.os = proxy

from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy
run_filter(load_policy(sys.argv[1]), [sys.argv[2]], sys.argv[3], workers=1, progress=False)
'''


def _run(script: Path, policy: Path, corpus: Path, out: Path, exit_after: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script), str(policy), str(corpus), str(out), str(exit_after)],
                          env=env, cwd=ROOT, capture_output=True, timeout=300).returncode


@pytest.mark.slow
@pytest.mark.parametrize("exit_after", [2, 4])  # mid-commit of the first shard; first rename of the second
def test_a_commit_killed_after_any_rename_resumes_to_the_same_bytes(tmp_path, exit_after):
    """Each shard commit renames data/, dropped/, quarantine/ and side-output files into place, then writes
    its statistics and marker. Killed right after the Nth rename, the job started again ends with the bytes of
    an uninterrupted run: a shard whose marker is missing is redone, never half-kept."""
    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 30)
    with open(corpus, "a") as f:
        f.write("not json\n")
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "side_rows_for_test"},
                                                {"stage": "min_length", "min_chars": 20}],
                          shard_size=8, samples=0, max_quarantine_fraction=None)
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    reference, killed = tmp_path / "ref", tmp_path / "killed"
    assert _run(script, policy, corpus, reference, 0) == 0
    assert _run(script, policy, corpus, killed, exit_after) == 9
    assert _run(script, policy, corpus, killed, 0) == 0
    folders = ("data", "dropped", "held", "quarantine", "side_rows_for_test_rows")
    assert read_tree(killed, folders) == read_tree(reference, folders)
    assert any(p.startswith("side_rows_for_test_rows/") for p in read_tree(reference, folders))
    for name in ("pipeline.json", "side_rows_for_test.json", "min_length.json"):
        a, b = (json.loads((d / "reports" / name).read_text()) for d in (killed, reference))
        assert a["counts"] == b["counts"]


def test_report_samples_of_a_non_pii_stage_hold_no_pii(tmp_path):
    """Samples are anonymized whatever the stage: min_length's samples on PII-laden text hold none of it."""
    values = ["maria.lopez@example.org", "212-555-0147", "536-22-8726"]
    docs = [{"id": f"d{i}", "text": f"Write to {values[0]} or call {values[1]}; SSN {values[2]}."
             + ("" if i % 2 else " " + long_text(i))} for i in range(8)]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "min_length", "min_chars": 120}], samples=5)
    out = tmp_path / "out"
    assert run_cli("filter", "--policy", policy, corpus, "--out", out, "--workers", "1", "--no-progress") == 0
    report = json.loads((out / "reports" / "min_length.json").read_text())
    assert report["samples"], "the stage kept no samples: nothing was checked"
    for path in (out / "reports").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".md"):
            content = path.read_text(encoding="utf-8")
            assert not [v for v in values if v in content], path.name


def test_eval_pii_exits_1_when_recall_is_low(tmp_path):
    """A run whose data still holds every injected value (a pii stage that found nothing) fails --min-recall."""
    from fmaudit.corpus import read_documents, write_jsonl
    from fmaudit.demo.corpus import generate_corpus

    generate_corpus(tmp_path / "demo", docs=40, seed=1)
    run = tmp_path / "run"
    write_jsonl(run / "data" / "00000.jsonl", [d.to_json() for d in read_documents([tmp_path / "demo" / "corpus"])])
    write_jsonl(run / "pii_ledger" / "00000.jsonl", [])
    assert run_cli("eval", "pii", run, "--truth", tmp_path / "demo" / "truth.jsonl", "--min-recall", "0.5") == 1


def test_toxicity_precision_and_recall_checks_fail_on_a_bad_scorer(tmp_path):
    """Ground truth marks as toxic documents profanity-check cannot see: recall 0, precision undefined or 0,
    both checks fail and the run exits 1."""
    docs = [{"id": f"t{i}", "text": f"People of group {i} are inferior and should leave the country."}
            for i in range(4)]
    docs += [{"id": f"p{i}", "text": f"What a fucking beautiful shit day number {i}."} for i in range(4)]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    truth = tmp_path / "truth.jsonl"
    truth.write_text("".join(json.dumps({"kind": "toxic", "id": f"t{i}"}) + "\n" for i in range(4)))
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "toxicity", "scorer": {"name": "profanity-check"},
                                                 "thresholds": {"profanity": 0.5}, "max_identity_removal_ratio": None,
                                                 "min_precision": 0.5, "min_recall": 0.5}],
                          max_quarantine_fraction=None)
    out = tmp_path / "out"
    assert run_cli("filter", "--policy", policy, corpus, "--out", out, "--workers", "1", "--truth", truth,
                   "--no-progress") == 1
    report = json.loads((out / "reports" / "toxicity.json").read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert not checks["recall"]["passed"] and not checks["precision"]["passed"]
    assert report["metrics"]["recall"] == 0.0
