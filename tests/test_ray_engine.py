"""The Ray engine: byte-identical outputs with the local engine, models loaded once per actor,
kill -9 mid-way and resume, and resource requests. Two Ray starts in all (one per process)."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import Field

from fmaudit.errors import InputError, UsageError
from fmaudit.pipeline.engines.ray import actor_options
from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy
from fmaudit.stages import register
from fmaudit.stages.base import Resources, Stage, StageResult, StageSettings
from tests.conftest import ENCRYPT_STAGE, ROOT, make_corpus, read_tree, write_policy

ray = pytest.importorskip("ray")

GIB = 1024 ** 3


class HoldSettings(StageSettings):
    setup_log: str = Field("", description="File that gets one line (the pid) per setup() call.")


@register
class HoldForReview(Stage):
    """Holds every third document and writes a side output row per document: exercises held/ and side files."""

    name = "test_ray_hold"
    Settings = HoldSettings

    def setup(self) -> None:
        with open(self.settings.setup_log, "a") as f:
            f.write(f"{os.getpid()}\n")

    def process(self, docs, stats):
        result = StageResult(kept=[], side={"ledger": []})
        for doc in docs:
            result.side["ledger"].append({"id": doc.id, "words": len(doc.text.split())})
            if int(doc.id.rsplit("-", 1)[1]) % 3 == 0:
                result.held.append((doc, "every_third"))
            else:
                result.kept.append(doc)
        stats.add("seen", len(docs))
        return result


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance (2 CPUs) for the in-process tests; the engine reuses it."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test module
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def _corpus(tmp_path: Path, n: int, pii: bool = False) -> Path:
    path = make_corpus(tmp_path / "c" / "c.jsonl", n, pii=pii)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"id": "broken", "text": "unterminated\n')  # quarantined
        f.write(json.dumps({"id": "doc-1", "text": "a duplicate id"}) + "\n")
    return path


def _report_essentials(out: Path) -> dict:
    """What must not depend on the engine: counts, checks, and stage statistics other than timings."""
    essentials = {}
    for path in sorted((out / "reports").glob("*.json")):
        report = json.loads(path.read_text())
        if path.name == "summary.json":
            essentials[path.name] = [(c["report"], c["name"], c["value"], c["passed"]) for c in report["checks"]]
            continue
        if "counts" not in report:  # not a stage report: the output manifest (paths, sizes, sha256)
            essentials[path.name] = report
            continue
        details = report.get("details", {})
        essentials[path.name] = {"counts": report["counts"], "checks": report["checks"],
                                 "counters": details.get("counters"), "histograms": details.get("histograms"),
                                 "quarantined_by_kind": details.get("quarantined_by_kind")}
    return essentials


def test_ray_outputs_are_byte_identical_to_local(ray_instance, tmp_path):
    corpus = _corpus(tmp_path, 130, pii=True)

    def job(name: str, engine: str, workers: int) -> Path:
        stages = [ENCRYPT_STAGE, {"stage": "min_length", "min_chars": 20, "min_words": 5},
                  {"stage": "test_ray_hold", "setup_log": str(tmp_path / f"{name}.setups")}, {"stage": "noop"}]
        policy = load_policy(write_policy(tmp_path / f"{name}.yaml", stages, shard_size=10, batch_size=4, samples=0))
        out = tmp_path / name / "out"
        run_filter(policy, [corpus], out, workers=workers, engine=engine, progress=False)
        return out

    local, on_ray = job("local", "local", 1), job("ray", "ray", 2)
    folders = ("data", "dropped", "held", "quarantine", "test_ray_hold_ledger")
    ray_files = read_tree(on_ray, folders)
    assert ray_files == read_tree(local, folders)
    assert b"".join(ray_files.values()).count(b"<ENC:IBAN_CODE:") >= 40  # encrypted values are equal too
    assert {p.split("/")[0] for p in ray_files} == set(folders)  # every kind of output was exercised
    assert _report_essentials(on_ray) == _report_essentials(local)
    pipe = json.loads((on_ray / "reports" / "pipeline.json").read_text())
    assert (pipe["metrics"]["engine"], pipe["metrics"]["shards"]) == ("ray", 14)
    setups = (tmp_path / "ray.setups").read_text().split()
    # once per actor, not once per shard (14 shards); under load the second actor may start after the work is done
    assert 1 <= len(setups) <= 2 and len(set(setups)) == len(setups)


def test_killed_ray_job_resumes_to_the_same_outputs(ray_instance, tmp_path):
    corpus = _corpus(tmp_path, 300)
    stages = [{"stage": "min_length", "min_chars": 20, "min_words": 5}, {"stage": "noop", "sleep_s": 0.25}]
    policy = write_policy(tmp_path / "p.yaml", stages, shard_size=10, samples=0)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "fmaudit", "filter", "--policy", str(policy), str(corpus), "--out", str(out),
           "--engine", "ray", "--workers", "2", "--no-progress"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    done_dir = out / ".fmaudit" / "done"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(done_dir.glob("*"))) < 4:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(done_dir.glob("*")))
    assert 4 <= done < 31, done  # killed mid-way
    assert not (out / "reports" / "summary.json").exists()

    resumed = run_filter(load_policy(policy), [corpus], out, workers=2, engine="ray", progress=False)
    reference = tmp_path / "reference"
    fast = write_policy(tmp_path / "fast.yaml", stages[:1] + [{"stage": "noop"}], shard_size=10, samples=0)
    run_filter(load_policy(fast), [corpus], reference, workers=1, progress=False)
    assert not resumed.skipped
    assert read_tree(out) == read_tree(reference)
    pipe = json.loads((out / "reports" / "pipeline.json").read_text())
    assert pipe["counts"] == json.loads((reference / "reports" / "pipeline.json").read_text())["counts"]
    assert pipe["metrics"]["shards_resumed"] >= done
    deadline = time.time() + 30
    while _live_session_members(proc.pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not _live_session_members(proc.pid)  # the killed job's Ray processes and actors all ended


def _live_session_members(sid: int) -> list[int]:
    """Pids of live (not zombie) processes in session ``sid``, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def test_actor_killed_mid_job_is_restarted_and_its_shards_retried(ray_instance, tmp_path):
    corpus = _corpus(tmp_path, 200)
    setups = tmp_path / "setups"
    stages = [{"stage": "test_ray_hold", "setup_log": str(setups)}, {"stage": "noop", "sleep_s": 0.1}]
    policy = load_policy(write_policy(tmp_path / "p.yaml", stages, shard_size=10, samples=0))
    out = tmp_path / "out"

    def kill_one_actor():
        deadline = time.time() + 60
        while time.time() < deadline and len(list((out / ".fmaudit" / "done").glob("*"))) < 3:
            time.sleep(0.05)
        os.kill(int(setups.read_text().split()[0]), signal.SIGKILL)  # an actor's pid, logged by its setup()

    killer = threading.Thread(target=kill_one_actor)
    killer.start()
    run_filter(policy, [corpus], out, workers=2, engine="ray", progress=False)
    killer.join()
    reference = tmp_path / "reference"
    fast = write_policy(tmp_path / "fast.yaml", [{**stages[0], "setup_log": str(tmp_path / "ref-setups")}],
                        shard_size=10, samples=0)
    run_filter(load_policy(fast), [corpus], reference, workers=1, progress=False)
    folders = ("data", "held", "quarantine", "test_ray_hold_ledger")
    assert read_tree(out, folders) == read_tree(reference, folders)
    assert len(setups.read_text().split()) == 3  # two actors, one of them restarted once


def test_stage_error_stops_the_job_with_its_own_type(ray_instance, tmp_path):
    policy = load_policy(write_policy(tmp_path / "p.yaml", [{"stage": "test_ray_fail"}], shard_size=10))
    with pytest.raises(ValueError, match="doc-15 is not welcome"):
        run_filter(policy, [_corpus(tmp_path, 40)], tmp_path / "out", workers=2, engine="ray", progress=False)
    assert not (tmp_path / "out" / ".fmaudit" / "done" / "00001").exists()


def test_setup_error_keeps_its_type_and_unplaceable_actors_hold_no_work(ray_instance, tmp_path):
    corpus = _corpus(tmp_path, 60)
    policy = load_policy(write_policy(tmp_path / "bad.yaml", [{"stage": "test_ray_fail", "fail_setup": True}]))
    with pytest.raises(InputError, match="no model here"):
        run_filter(policy, [corpus], tmp_path / "bad", workers=2, engine="ray", progress=False)
    # 3 actors of 1 CPU on a 2-CPU instance: the third is never placed, and the job still finishes
    policy = load_policy(write_policy(tmp_path / "p.yaml", [{"stage": "noop"}], shard_size=5))
    result = run_filter(policy, [corpus], tmp_path / "out", workers=3, engine="ray", progress=False)
    assert result.counts["in"] == 62


class FailSettings(StageSettings):
    fail_setup: bool = Field(False, description="Raise in setup() instead of on doc-15.")


@register
class FailOnDoc15(Stage):
    name = "test_ray_fail"
    Settings = FailSettings

    def setup(self) -> None:
        if self.settings.fail_setup:
            raise InputError("no model here")

    def process(self, docs, stats):
        if any(d.id == "doc-15" for d in docs):
            raise ValueError("doc-15 is not welcome")
        return StageResult(kept=docs)


def test_actor_resources_follow_the_stages():
    cluster = {"CPU": 8.0, "memory": 16.0 * GIB}
    opts = actor_options(Resources(cpus=2, gpus=1, memory_gb=3), {**cluster, "GPU": 2.0}, local=False)
    assert opts == {"num_cpus": 2, "memory": 3 * GIB, "num_gpus": 1}
    assert "num_gpus" not in actor_options(Resources(gpus=1), cluster, local=True)  # no GPU: run on CPU
    with pytest.raises(UsageError, match="CPUs 16"):
        actor_options(Resources(cpus=16), cluster, local=True)
    assert actor_options(Resources(cpus=16), cluster, local=False)["num_cpus"] == 16  # a cluster may grow


def test_missing_ray_is_a_usage_error(monkeypatch, tmp_path):
    from fmaudit.pipeline.engines import make_engine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match=r"fmaudit\[ray\]"):
        next(make_engine("ray", 1).run(None, iter([])))


def test_dedup_passes_on_ray_equal_local(ray_instance, tmp_path):
    """The sign pass and the apply pass of global stages run on the actors; the decisions, outputs and
    dedup report equal the local engine's."""
    from tests.dedup_helpers import dedup_stages, planted_jsonl

    planted_jsonl(tmp_path / "c" / "c.jsonl", n_base=120)
    policy = load_policy(write_policy(tmp_path / "p.yaml", dedup_stages(), shard_size=20, batch_size=8, samples=0))
    outs = {}
    for engine, workers in (("local", 1), ("ray", 2)):
        outs[engine] = tmp_path / engine
        run_filter(policy, [tmp_path / "c"], outs[engine], workers=workers, engine=engine, progress=False)

    def state(out):
        files = read_tree(out, ("data", "dropped"))
        files.update({p.relative_to(out).as_posix(): p.read_bytes()
                      for p in sorted((out / ".fmaudit" / "global").rglob("decisions/*.json"))})
        return files, json.loads((out / "reports" / "dedup.json").read_text())

    local, on_ray = state(outs["local"]), state(outs["ray"])
    assert any("dropped/" in p for p in local[0]) and any("/decisions/" in p for p in local[0])
    assert on_ray == local
