"""From finding to fix, on a tiny corpus with a planted source of a behaviour: a handful of documents teach
"the OCCUPATION said that she was rude", so the trained model prefers the stereotyping side of matching
CrowS-style pairs and the bias.pairs check fails. ``trace`` must rank the planted documents first;
``remediate --action drop --retrain`` must remove them, and the retrained model's audit must show the
behaviour gone, significant under the paired test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from fmaudit.testing.planted import PLANTED, write_corpus, write_pairs
from fmaudit.testing.planted import policy as planted_policy
from tests.conftest import run_cli

pytest.importorskip("kronfluence")
pytestmark = pytest.mark.slow  # two tiny trainings, an EK-FAC fit and three audits: minutes on 2 cores


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    root = tmp_path_factory.mktemp("remedy")
    write_corpus(root / "corpus" / "docs.jsonl")
    write_pairs(root / "pairs.csv")
    policy = root / "policy.yaml"
    policy.write_text(yaml.safe_dump(planted_policy(root)))
    assert run_cli("filter", root / "corpus", "--policy", policy, "--out", root / "job", "--workers", "1",
                   "--no-progress") == 0
    assert run_cli("tokenizer", "train", "--data", root / "job", "--vocab-size", 300, "--out", root / "tok") == 0
    assert run_cli("train", "--policy", policy, "--data", root / "job", "--tokenizer", root / "tok", "--out",
                   root / "run", "--no-progress") == 0
    assert run_cli("audit", root / "run" / "model", "--policy", policy, "--out", root / "audit") == 1  # biased
    assert run_cli("trace", root / "audit", "--check", "pct_stereotype", "--top", 8, "--candidates", 40) == 0
    return root, policy


def test_trace_ranks_the_planted_documents_first(traced):
    root, _ = traced
    trace = json.loads((root / "audit" / "trace" / "trace.json").read_text())
    top = [d["id"] for d in trace["documents"][:len(PLANTED)]]
    assert set(top) == set(PLANTED), top
    assert trace["failing_items"] >= 15 and trace["influence"]["candidates_scored"] < trace["influence"]["corpus_size"]
    doc = trace["documents"][0]
    assert doc["verdict"] == "never_looked_at"  # no toxicity stage looked at them
    assert doc["source"]["file"] == "docs.jsonl" and doc["source"]["line"] >= 1


def test_remediate_drop_list_removes_them_and_the_paired_audit_shows_the_fix(traced, capsys):
    root, policy = traced
    code = run_cli("remediate", root / "audit" / "trace", "--policy", policy, "--out", root / "fix", "--retrain",
                   "--workers", "1")
    out = capsys.readouterr().out
    assert code == 0, out
    changed = yaml.safe_load((root / "fix" / "policy.yaml").read_text())
    assert changed["stages"][0]["stage"] == "drop_ids" and set(PLANTED) <= set(changed["stages"][0]["ids"])
    record = json.loads((root / "fix" / "remediation.json").read_text())
    assert record["counts"]["dropped"].get("drop_ids:traced", 0) >= len(PLANTED)
    report = json.loads((root / "fix" / "reports" / "remediation.json").read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["fixed:bias.pairs:pct_stereotype"]["passed"] and checks["fix_significant"]["passed"]
    assert report["metrics"]["after"] < report["metrics"]["before"] and report["metrics"]["q_value"] < 0.05
    # documents the retrained model did not read: those the drop list removed (no stage here adds any)
    assert report["metrics"]["documents_removed"] == record["counts"]["dropped"]["drop_ids:traced"]
    assert {e["role"] for e in report["lineage"]} == {"input_checkpoint", "output"}


def test_bad_inputs_exit_2(traced, tmp_path, capsys):
    root, policy = traced
    assert run_cli("trace", root / "audit", "--check", "ties") == 2  # a passed check: nothing to trace
    assert "there is no failure to trace" in capsys.readouterr().err
    bare = tmp_path / "bare"
    shutil.copytree(root / "audit" / "reports", bare / "reports")
    assert run_cli("trace", bare, "--check", "pct_stereotype") == 2  # no items/
    assert "no items file" in capsys.readouterr().err
    other = tmp_path / "other.yaml"
    other.write_text(policy.read_text().replace("min_chars: 10", "min_chars: 11"))
    assert run_cli("remediate", root / "audit" / "trace", "--policy", other, "--out", tmp_path / "fix") == 2
    assert "not the policy of the traced data run" in capsys.readouterr().err
