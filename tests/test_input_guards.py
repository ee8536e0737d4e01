"""Inputs that are not the corpus: side files below a named folder are skipped (and said so), a high share of
quarantined records fails a check, and quarantine/ keeps raw records anonymized, verbatim or not at all."""

from __future__ import annotations

import json
import logging

import pytest

from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy
from tests.conftest import long_text, write_policy

STAGES = [{"stage": "min_length", "min_chars": 20, "min_words": 5}]
LEAKY = '{"id": "x1", "text": "Mail john.doe@example.org or call Maria Lopez at 212-555-0147'  # unterminated


def _corpus(folder, bad_lines: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps({"id": f"d{i}", "text": long_text(i)}) for i in range(40)] + [LEAKY] * bad_lines
    (folder / "part.jsonl").write_text("\n".join(rows) + "\n")
    return folder


def _quarantine(out):
    return [json.loads(line) for p in sorted((out / "quarantine").glob("*.jsonl")) for line in p.read_text().splitlines()]


def test_side_files_of_a_named_folder_are_skipped_and_said(tmp_path, caplog):
    root = tmp_path / "demo"
    _corpus(root / "corpus")
    (root / "truth.jsonl").write_text(json.dumps({"id": "d1", "kind": "pii", "value": "Maria Lopez"}) + "\n")
    policy = load_policy(write_policy(tmp_path / "p.yaml", STAGES, samples=0, quarantine_raw="raw"))
    with caplog.at_level(logging.WARNING, logger="fmaudit"):
        result = run_filter(policy, [root], tmp_path / "out", workers=1, progress=False)
    assert result.counts["in"] == 40 and result.counts["quarantined"] == 0 and result.exit_code == 0
    assert "truth.jsonl: skipped (ground-truth file)" in caplog.text
    pipe = json.loads((tmp_path / "out" / "reports" / "pipeline.json").read_text())
    assert pipe["details"]["skipped_inputs"] == [{"path": str(root / "truth.jsonl"), "reason": "ground-truth file"}]
    # named directly, the file is read (and its rows, without text, quarantined)
    direct = run_filter(policy, [root / "corpus", root / "truth.jsonl"], tmp_path / "direct", workers=1, progress=False)
    assert direct.counts["quarantined"] == 1
    # a filter output named as input: only its data/ is corpus
    again = run_filter(policy, [tmp_path / "direct"], tmp_path / "again", workers=1, progress=False)
    assert again.counts["in"] == 40 and again.counts["quarantined"] == 0


def test_many_quarantined_records_fail_the_default_check(tmp_path):
    corpus = _corpus(tmp_path / "c", bad_lines=3)  # 3 of 43: 7%
    policy = load_policy(write_policy(tmp_path / "p.yaml", STAGES, samples=0, quarantine_raw="omit"))
    result = run_filter(policy, [corpus], tmp_path / "out", workers=1, progress=False)
    checks = {c["name"]: c for c in json.loads((tmp_path / "out" / "reports" / "pipeline.json").read_text())["checks"]}
    assert checks["quarantine_fraction"]["passed"] is False and checks["quarantine_fraction"]["threshold"] == 0.05
    assert result.exit_code == 1
    lenient = load_policy(write_policy(tmp_path / "q.yaml", STAGES, samples=0, quarantine_raw="omit",
                                       max_quarantine_fraction=0.1))
    assert run_filter(lenient, [corpus], tmp_path / "out2", workers=1, progress=False).exit_code == 0


@pytest.mark.parametrize("form", ["anonymized", "raw", "omit"])
def test_quarantine_raw_forms(tmp_path, form):
    corpus = _corpus(tmp_path / "c", bad_lines=1)
    pipeline = {"samples": 0} if form == "anonymized" else {"samples": 0, "quarantine_raw": form}  # the default
    policy = load_policy(write_policy(tmp_path / "p.yaml", STAGES, **pipeline))
    run_filter(policy, [corpus], tmp_path / "out", workers=1, progress=False)
    [row] = _quarantine(tmp_path / "out")
    assert (row["kind"], row["line"], row["raw_form"]) == ("bad_json", 41, form)
    if form == "raw":
        assert row["raw"] == LEAKY
    elif form == "omit":
        assert "raw" not in row
    else:
        assert '"text": "Mail <EMAIL_ADDRESS>' in row["raw"]
        for value in ("john.doe@example.org", "Maria Lopez", "212-555-0147"):
            assert value not in row["raw"]
