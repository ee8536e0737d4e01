"""The runner: accounting identity, shards, kill -9 and resume, re-runs, engines, reports."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmaudit import reports
from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy
from fmaudit.reports.envelope import validate_report
from tests.conftest import ENCRYPT_STAGE, ROOT, make_corpus, read_tree, run_cli, write_policy


def _policy(tmp_path, stages=None, **pipeline):
    stages = stages or [{"stage": "min_length", "min_chars": 20, "min_words": 5, "max_drop_fraction": 0.9}]
    # mixed_corpus is a third malformed on purpose; its quarantine rows are checked verbatim here
    # (tests/test_input_guards.py covers the default quarantine check and anonymized raw records)
    defaults = {"shard_size": 4, "samples": 0, "max_quarantine_fraction": 0.5, "quarantine_raw": "raw"}
    return write_policy(tmp_path / "p.yaml", stages, **{**defaults, **pipeline})


def test_accounting_and_outputs(tmp_path, mixed_corpus):
    out = tmp_path / "out"
    assert run_cli("filter", "--policy", _policy(tmp_path), mixed_corpus, "--out", out, "--workers", "1",
                   "--no-progress") == 0
    pipe = json.loads((out / "reports" / "pipeline.json").read_text())
    c = pipe["counts"]
    assert (c["in"], c["kept"], c["quarantined"]) == (19, 12, 6)
    assert c["dropped"] == {"min_length:too_few_chars": 1}
    assert {ch["name"]: ch["passed"] for ch in pipe["checks"]} == {"accounting_identity": True,
                                                                   "added_accounting": True,
                                                                   "quarantine_fraction": True}
    dropped = [json.loads(l) for p in sorted((out / "dropped").iterdir()) for l in p.read_text().splitlines()]
    assert dropped == [{"id": "b", "text": "too short", "meta": {},
                        "dropped": {"stage": "min_length", "reason": "too_few_chars"}}]
    quarantined = [json.loads(l) for p in sorted((out / "quarantine").iterdir()) for l in p.read_text().splitlines()]
    assert sorted(q["kind"] for q in quarantined) == sorted(
        ["bad_json", "missing_text", "non_string_text", "invalid_utf8", "empty_text", "duplicate_id"])
    assert all(q["source"].endswith("one.jsonl") and q["line"] > 0 for q in quarantined)
    kept_ids = [json.loads(l)["id"] for p in sorted((out / "data").iterdir()) for l in p.read_text().splitlines()]
    assert kept_ids == ["a", "h"] + [f"z{i}" for i in range(10, 20)]


def test_reports_follow_schema_and_load_as_dataframes(tmp_path, mixed_corpus):
    out = tmp_path / "out"
    run_filter(load_policy(_policy(tmp_path)), [mixed_corpus], out, workers=1, progress=False)
    for p in (out / "reports").glob("*.json"):
        if p.name not in ("summary.json", "manifest.json"):
            validate_report(json.loads(p.read_text()))
    import jsonschema

    from fmaudit.reports.envelope import schema

    jsonschema.validators.validator_for(schema()).check_schema(schema())  # runs skip this check (it is slow)
    summary = json.loads((out / "reports" / "summary.json").read_text())
    assert summary["passed"] and summary["exit_code"] == 0
    assert {c["report"] for c in summary["checks"]} == {"pipeline", "min_length"}
    frames = reports.load(out / "reports")
    assert set(frames.checks["name"]) == {"accounting_identity", "added_accounting", "quarantine_fraction",
                                          "drop_fraction"}
    assert frames.checks["passed"].all()
    row = frames.counts.set_index("stage").loc["min_length"]
    assert (row["in"], row["kept"], row["dropped"]) == (13, 12, 1)
    assert "drop_fraction" in set(frames.metrics["name"])
    manifest = json.loads((out / "reports" / "manifest.json").read_text())
    assert {f["path"].split("/")[0] for f in manifest["files"]} == {"data", "dropped", "quarantine"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    html = (out / "reports" / "summary.html").read_text()
    assert "accounting_identity" in html and "All error-level checks passed" in html
    (out / "reports" / "summary.json").write_text('{"passed": tru')  # a damaged reports folder: exit 2, not 3
    assert run_cli("report", out) == 2


def test_failed_check_exits_1(tmp_path, mixed_corpus):
    policy = _policy(tmp_path, [{"stage": "min_length", "min_chars": 10_000, "max_drop_fraction": 0.5}])
    assert run_cli("filter", "--policy", policy, mixed_corpus, "--out", tmp_path / "o", "--workers", "1",
                   "--no-progress") == 1
    assert json.loads((tmp_path / "o" / "reports" / "summary.json").read_text())["failed"] == ["min_length:drop_fraction"]


def test_workers_and_rerun(tmp_path, mixed_corpus):
    policy = load_policy(_policy(tmp_path))
    one = run_filter(policy, [mixed_corpus], tmp_path / "one", workers=1, progress=False)
    two = run_filter(policy, [mixed_corpus], tmp_path / "two", workers=2, progress=False)
    assert read_tree(tmp_path / "one") == read_tree(tmp_path / "two")
    def stats(d):  # per-shard statistics, less the timings
        shards = [json.loads(p.read_text()) for p in sorted((d / ".fmaudit" / "shards").iterdir())]
        for shard in shards:
            for stage in shard.values():
                stage["moments"].pop("seconds", None)
        return shards

    assert stats(tmp_path / "one") == stats(tmp_path / "two")
    assert one.counts == two.counts
    again = run_filter(policy, [mixed_corpus], tmp_path / "one", workers=1, progress=False)
    assert again.skipped and again.counts == one.counts


def test_stages_flag_and_bad_inputs(tmp_path, mixed_corpus, capsys):
    policy = _policy(tmp_path, [{"stage": "noop"}, {"stage": "min_length", "min_chars": 20}])
    out = tmp_path / "o"
    assert run_cli("filter", "--policy", policy, mixed_corpus, "--out", out, "--stages", "noop", "--workers", "1",
                   "--no-progress") == 0
    assert not (out / "reports" / "min_length.json").exists() and (out / "reports" / "noop.json").exists()
    # the same folder with another stage selection is another job
    assert run_cli("filter", "--policy", policy, mixed_corpus, "--out", out, "--workers", "1", "--no-progress") == 2
    assert "different job" in capsys.readouterr().err
    assert run_cli("filter", "--policy", policy, tmp_path / "nope.jsonl", "--out", tmp_path / "x") == 2
    assert "no such file" in capsys.readouterr().err
    assert run_cli("filter", "--policy", policy, mixed_corpus, "--out", tmp_path / "t", "--truth",
                   tmp_path / "nope-truth.jsonl") == 2
    assert "nope-truth.jsonl: no such ground-truth file" in capsys.readouterr().err and not (tmp_path / "t").exists()
    assert run_cli("filter", "--policy", policy, mixed_corpus, "--out", tmp_path / "y", "--stages", "cda") == 2
    assert run_cli("filter", "--policy", policy, mixed_corpus, "--out", tmp_path / "z", "--workers", "0") == 2


def test_stage_that_loses_a_document_stops_the_job(tmp_path, mixed_corpus):
    from fmaudit.stages import register
    from fmaudit.stages.base import Stage, StageResult

    @register
    class Lossy(Stage):
        name = "lossy_for_test"

        def process(self, docs, stats):
            return StageResult(kept=docs[1:])

    policy = load_policy(_policy(tmp_path, [{"stage": "lossy_for_test"}]))
    with pytest.raises(RuntimeError, match="lost"):
        run_filter(policy, [mixed_corpus], tmp_path / "o", workers=1, progress=False)


def test_stage_that_loses_a_document_from_its_input_list_stops_the_job(tmp_path, mixed_corpus):
    """The accounting compares with the ids a stage was given, taken before it ran: a stage that removes a
    document from the very list it was handed, and returns that list as kept, is caught too."""
    from fmaudit.stages import register
    from fmaudit.stages.base import Stage, StageResult

    @register
    class InPlaceLossy(Stage):
        name = "in_place_lossy_for_test"

        def process(self, docs, stats):
            docs.pop()
            return StageResult(kept=docs)

    policy = load_policy(_policy(tmp_path, [{"stage": "in_place_lossy_for_test"}]))
    with pytest.raises(RuntimeError, match="lost"):
        run_filter(policy, [mixed_corpus], tmp_path / "o", workers=1, progress=False)


def test_a_stage_that_rewrites_in_place_is_written_as_rewritten(tmp_path, mixed_corpus):
    """data/ holds each kept document as the stages left it, also when a stage rewrote it in place (nothing
    encoded before the stages ran may be written instead)."""
    from fmaudit.stages import register
    from fmaudit.stages.base import Stage, StageResult

    @register
    class UpperInPlace(Stage):
        name = "upper_in_place_for_test"

        def process(self, docs, stats):
            for d in docs:
                d.text = d.text.upper()
            return StageResult(kept=docs)

    policy = load_policy(_policy(tmp_path, [{"stage": "upper_in_place_for_test"}, {"stage": "noop"}]))
    run_filter(policy, [mixed_corpus], tmp_path / "o", workers=1, progress=False)
    rows = [json.loads(l) for p in sorted((tmp_path / "o" / "data").iterdir()) for l in p.read_text().splitlines()]
    assert len(rows) == 13 and all(r["text"] == r["text"].upper() for r in rows)
    assert any(r["text"] != r["text"].lower() for r in rows)


def test_manifest_hashes_are_those_of_the_bytes_on_disk(tmp_path, mixed_corpus):
    """Output files are hashed as they are written; the manifest reuses such a hash only while the file is the
    one committed, and hashes a file changed since (same size) from its bytes."""
    import hashlib

    from fmaudit.pipeline.layout import JobLayout, write_manifest

    out = tmp_path / "o"
    run_filter(load_policy(_policy(tmp_path, [{"stage": "noop"}])), [mixed_corpus], out, workers=1,
               progress=False)
    manifest = json.loads((out / "reports" / "manifest.json").read_text())["files"]
    assert manifest and all(f["sha256"] == hashlib.sha256((out / f["path"]).read_bytes()).hexdigest()
                            for f in manifest)
    data = out / manifest[0]["path"]
    raw = bytearray(data.read_bytes())
    raw[raw.index(b'"text":"') + 8] ^= 0x01  # one letter changed, same size
    data.write_bytes(bytes(raw))
    again = write_manifest(JobLayout(out), len(list((out / ".fmaudit" / "done").iterdir())))["files"]
    assert again[0]["sha256"] == hashlib.sha256(bytes(raw)).hexdigest() != manifest[0]["sha256"]
    assert again[1:] == manifest[1:]


def test_kill_9_then_resume_is_byte_identical(tmp_path):
    """With encryption on: two clean runs, and a killed and resumed one, write the same bytes."""
    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 400, pii=True)
    policy = write_policy(tmp_path / "p.yaml", [ENCRYPT_STAGE, {"stage": "noop", "sleep_s": 0.05},
                                                {"stage": "min_length", "min_chars": 20}],
                          shard_size=10, batch_size=5, samples=0)
    reference = tmp_path / "ref"
    run_filter(load_policy(policy), [corpus], reference, workers=2, progress=False)
    again = tmp_path / "again"
    run_filter(load_policy(policy), [corpus], again, workers=1, progress=False)
    assert read_tree(again) == read_tree(reference)
    assert b"".join(read_tree(reference).values()).count(b"<ENC:IBAN_CODE:") >= 100

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "fmaudit", "filter", "--policy", str(policy), str(corpus), "--out", str(out),
           "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / ".fmaudit" / "done").glob("*"))) < 8:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / ".fmaudit" / "done").glob("*")))
    assert 8 <= done < 40, done  # killed mid-way
    assert not (out / "reports" / "summary.json").exists()

    result = run_filter(load_policy(policy), [corpus], out, workers=2, progress=False)
    assert not result.skipped
    assert read_tree(out) == read_tree(reference)
    pipe = json.loads((out / "reports" / "pipeline.json").read_text())
    assert pipe["counts"] == json.loads((reference / "reports" / "pipeline.json").read_text())["counts"]
    assert pipe["metrics"]["shards_resumed"] >= 8


def test_stage_setup_error_in_a_worker_keeps_its_type(tmp_path):
    """A stage that cannot be set up in a worker process fails the first task with its own error (which the
    CLI maps to its exit code), not with a broken process pool."""
    from fmaudit.pipeline import worker
    from fmaudit.pipeline.worker import ProcessorSpec, ShardTask

    worker.init_worker(ProcessorSpec(str(tmp_path / "o"), [("no_such_stage_for_test", {})]))
    try:
        with pytest.raises(KeyError, match="no_such_stage_for_test"):
            worker.run_in_worker(ShardTask(0, []))
    finally:
        worker._SETUP_ERROR = None


def test_rerun_does_not_rehash_unchanged_inputs(tmp_path, mixed_corpus, monkeypatch):
    import fmaudit.pipeline.job_inputs as job_inputs

    policy = load_policy(_policy(tmp_path))
    run_filter(policy, [mixed_corpus], tmp_path / "o", workers=1, progress=False)
    hashed = []
    monkeypatch.setattr(job_inputs, "sha256_file", lambda p: hashed.append(p) or "0" * 64)
    assert run_filter(policy, [mixed_corpus], tmp_path / "o", workers=1, progress=False).skipped
    assert hashed == []
    (mixed_corpus / "one.jsonl").write_bytes((mixed_corpus / "one.jsonl").read_bytes() + b"\n")  # changed: re-hashed
    with pytest.raises(Exception, match="different job"):
        run_filter(policy, [mixed_corpus], tmp_path / "o", workers=1, progress=False)
    assert [p.name for p in hashed] == ["one.jsonl"]


def test_a_noop_job_imports_no_heavy_library(tmp_path):
    """A job whose stages need nothing heavy loads nothing heavy: the runner's own start-up stays small."""
    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 20)
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "noop"}], samples=0)
    heavy = ["numpy", "pandas", "matplotlib", "torch", "transformers", "spacy", "presidio_analyzer", "sklearn",
             "pyarrow", "tqdm", "multiprocessing"]
    code = ("import sys; from fmaudit.cli import main; rc = main(sys.argv[1:]); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules)); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, "filter", "--policy", str(policy), str(corpus), "--out",
                          str(tmp_path / "o"), "--workers", "1", "--no-progress"], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
