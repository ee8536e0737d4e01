"""dedup_exact and dedup_near in the runner: planted duplicates found (recall and precision), records of what
each dropped document duplicates, the accounting identity, dedup.json, kill -9 in each of the three passes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy
from tests.conftest import ROOT, read_tree, run_cli, write_policy
from tests.dedup_helpers import THRESHOLD, dedup_stages, planted_jsonl

pytest.importorskip("scipy")


def _dropped(out):
    return [json.loads(line) for p in sorted((out / "dropped").glob("*.jsonl")) for line in p.read_text().splitlines()]


def test_planted_duplicates_are_found_and_accounted(tmp_path):
    truth = planted_jsonl(tmp_path / "c" / "c.jsonl")
    policy = write_policy(tmp_path / "p.yaml", dedup_stages(), shard_size=60, batch_size=16, samples=3)
    out = tmp_path / "out"
    assert run_cli("filter", "--policy", policy, tmp_path / "c", "--out", out, "--workers", "1", "--no-progress") == 0

    dropped = _dropped(out)
    by_id = {d["id"]: d for d in dropped}
    assert by_id["shout-0"]["dropped"] == {"stage": "dedup_exact", "reason": "exact_duplicate"}
    assert by_id["tiny"]["dropped"] == {"stage": "min_length", "reason": "too_few_chars"}
    assert by_id["shout-0"]["meta"]["duplicate"]["of"] == "doc-0000"
    near = [d for d in dropped if d["dropped"]["stage"] == "dedup_near"]
    exact_ids = {d["id"] for d in dropped if d["dropped"]["stage"] == "dedup_exact"}
    assert not {d["meta"]["duplicate"]["of"] for d in near} & exact_ids  # near never keeps what exact dropped
    assert near and all(d["meta"]["duplicate"]["similarity"] >= THRESHOLD for d in near)
    found = {tuple(sorted((d["id"], d["meta"]["duplicate"]["of"]))) for d in dropped if "duplicate" in d["meta"]}
    positives = {tuple(sorted(p)) for p, j in truth.items() if j >= THRESHOLD}
    planted = {tuple(sorted(p)) for p in truth}
    assert len(positives) > 30 and len(planted - positives) > 30
    recall = len(positives & found) / len(positives)
    precision = len(found & positives) / len(found & planted)
    assert recall >= 0.95 and precision >= 0.95, (recall, precision)

    pipe = json.loads((out / "reports" / "pipeline.json").read_text())
    assert all(c["passed"] for c in pipe["checks"])  # accounting identity with duplicates dropped
    c = pipe["counts"]
    assert c["in"] == c["kept"] + sum(c["dropped"].values()) + sum(c["held"].values()) + c["quarantined"]
    assert c["dropped"]["dedup_near:near_duplicate"] == len(near)
    assert c["dropped"]["min_length:too_few_chars"] == 1
    stages = {r["stage"]: r["counts"] for r in (json.loads(p.read_text()) for p in sorted((out / "reports").glob("*.json")))
              if "counts" in r}
    assert stages["dedup_exact"]["in"] == c["in"] - 1 and stages["noop"]["in"] == c["kept"]  # each stage ran once

    report = json.loads((out / "reports" / "dedup.json").read_text())["stages"]
    near_report = report["dedup_near"]
    assert near_report["metrics"]["duplicates"] == len(near)
    assert set(near_report["duplicate_rate_by_source"]) == {"web", "books"}
    assert sum(int(k) * v for k, v in near_report["cluster_size_histogram"].items()) >= len(near)
    assert sum(near_report["removed_similarity_histogram"]["counts"]) == len(near)
    assert 0 <= near_report["metrics"]["candidate_false_positive_rate"] < 1
    assert near_report["global_step"]["partitions"] == near_report["global_step"]["lsh"]["bands"]  # spilled by band
    pairs = near_report["sample_pairs"]
    assert len(pairs) == 3 and all({"kept", "dropped", "similarity"} <= set(p) for p in pairs)
    assert report["dedup_exact"]["metrics"]["duplicates"] >= 1


def test_global_stages_apart_are_a_policy_error(tmp_path, capsys):
    planted_jsonl(tmp_path / "c" / "c.jsonl", n_base=20)
    stages = [{"stage": "dedup_exact"}, {"stage": "min_length", "min_chars": 1}, {"stage": "dedup_near"}]
    policy = write_policy(tmp_path / "p.yaml", stages)
    assert run_cli("filter", "--policy", policy, tmp_path / "c", "--out", tmp_path / "o", "--no-progress") == 2
    assert "must follow one another" in capsys.readouterr().err
    assert run_cli("policy", "check", policy) == 2
    assert "p.yaml:" in (err := capsys.readouterr().err) and "stages[1].stage: global stages" in err
    bad = write_policy(tmp_path / "bad.yaml", [{"stage": "dedup_near", "bands": 4}])
    assert run_cli("policy", "check", bad) == 2
    assert "set both bands and rows" in capsys.readouterr().err


def _state(out):
    """Committed decisions of the global step, beside the outputs."""
    files = read_tree(out, ("data", "dropped", "quarantine"))
    for p in sorted((out / ".fmaudit" / "global").rglob("decisions/*.json")):
        files[p.relative_to(out).as_posix()] = p.read_bytes()
    return files


def test_kill_9_in_each_pass_then_rerun_is_byte_identical(tmp_path):
    planted_jsonl(tmp_path / "c" / "c.jsonl", n_base=200)
    n_shards = -(-len((tmp_path / "c" / "c.jsonl").read_text().splitlines()) // 25)
    policy = write_policy(tmp_path / "p.yaml", dedup_stages("test_dedup_slow", sleep_s=0.15), shard_size=25,
                          batch_size=25, samples=0)
    reference = tmp_path / "ref"
    fast = write_policy(tmp_path / "fast.yaml", dedup_stages("test_dedup_slow"), shard_size=25, batch_size=25,
                        samples=0)
    run_filter(load_policy(fast), [tmp_path / "c"], reference, workers=1, progress=False)

    out = tmp_path / "killed"
    script = ("import sys, tests.dedup_helpers; from fmaudit.pipeline.runner import run_filter; "
              "from fmaudit.policy import load_policy; "
              "run_filter(load_policy(sys.argv[1]), [sys.argv[2]], sys.argv[3], workers=1, progress=False)")
    state = out / ".fmaudit"
    passes = {
        "sign": lambda: len(list((state / "global" / "signed").glob("*"))) >= 3,
        "decide": lambda: (state / "global" / "test_dedup_slow" / "work" / "deciding").exists(),
        "apply": lambda: len(list((state / "done").glob("*"))) >= 3,
    }
    for name, reached in passes.items():
        proc = subprocess.Popen([sys.executable, "-c", script, str(policy), str(tmp_path / "c"), str(out)], cwd=ROOT,
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not reached():
            time.sleep(0.02)
        assert proc.poll() is None, (name, proc.stderr.read().decode()[-2000:])
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (state / "complete").exists(), name
        if name == "sign":
            assert len(list((state / "global" / "signed").glob("*"))) < n_shards
        if name == "decide":  # killed inside the decide step: signatures all committed, no decisions yet
            assert len(list((state / "global" / "signed").glob("*"))) == n_shards
            assert not (state / "global" / "test_dedup_slow" / "decided").exists()
    assert (state / "global" / "test_dedup_slow" / "decided").exists()  # the decide step was redone
    assert len(list((state / "done").glob("*"))) < n_shards  # the apply pass was killed mid-way

    result = run_filter(load_policy(policy), [tmp_path / "c"], out, workers=1, progress=False)
    assert not result.skipped
    assert _state(out) == _state(reference)
    assert result.counts == json.loads((reference / "reports" / "pipeline.json").read_text())["counts"]
    assert not (state / "global" / "pending").exists() and not (state / "global" / "test_dedup_slow" / "sig").exists()
