"""Pre-training: a tiny model overfits a tiny corpus, kill-and-resume reproduces the loss curve, 2-process
DDP (gloo) equals 1 process with the same global batch, and the training report."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from fmaudit.core.config import TrainSettings
from fmaudit.core.train import train
from fmaudit.corpus import sha256_file, write_jsonl
from fmaudit.reports import validate_report
from tests.conftest import ROOT, run_cli


def tiny(**overrides) -> TrainSettings:
    base = dict(model={"preset": "llama-tiny"}, seq_len=32, micro_batch=4, lr=5e-3, warmup_steps=2, max_steps=10,
                holdout_fraction=0.1, eval_interval=4, eval_batches=2, log_interval=1, checkpoint_interval=4,
                cpu_threads=1)
    return TrainSettings(**{**base, **overrides})


def metrics(run: Path, split: str) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if r["split"] == split]


@pytest.fixture(scope="module")
def overfit_run(lm_job, tmp_path_factory) -> Path:
    """100 steps of llama-tiny on 16 documents (about 700 training tokens): enough to memorise them."""
    root = tmp_path_factory.mktemp("overfit")
    write_jsonl(root / "job" / "data" / "00000.jsonl", lm_job["docs"][:16])
    (root / "job" / "reports").mkdir()
    (root / "job" / "reports" / "min_length.json").write_text('{"stage": "min_length"}\n')
    policy = root / "overfit.yaml"
    settings = tiny(micro_batch=8, lr=1e-2, warmup_steps=5, max_steps=100, holdout_fraction=0.3, eval_interval=50,
                    log_interval=10, checkpoint_interval=1000, max_heldout_loss_ratio=0.5)
    policy.write_text(yaml.safe_dump({"version": 1, "name": "overfit",
                                      "train": settings.model_dump(exclude_defaults=True)}))
    code = run_cli("train", "--policy", policy, "--data", root / "job", "--tokenizer", lm_job["tokenizer"],
                   "--out", root / "run", "--no-progress")
    assert code == 1  # memorising 12 documents does not halve the held-out loss: the check fails, exit 1
    return root / "run"


def test_tiny_model_overfits_tiny_corpus(overfit_run):
    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.core.data import PackedSequences
    from fmaudit.core.evaluate import mean_token_loss

    meta = json.loads((overfit_run / "tokens" / "meta.json").read_text())
    tokens = np.fromfile(overfit_run / "tokens" / "train.bin", dtype=meta["dtype"])
    counts = np.bincount(tokens)
    p = counts[counts > 0] / counts.sum()
    unigram_entropy = float(-(p * np.log(p)).sum())
    # No model that ignores context can beat the unigram entropy (cross-entropy >= entropy of the marginal);
    # a loss under a quarter of it means the model predicts from context: it has memorised the documents.
    model, _ = load_checkpoint(overfit_run / "model")
    seqs = PackedSequences(overfit_run / "tokens" / "train.bin", 32, meta["dtype"])
    import torch

    total, n = mean_token_loss(model, [torch.from_numpy(seqs.get(range(len(seqs))))])
    assert total / n < 0.25 * unigram_entropy, (total / n, unigram_entropy)
    assert metrics(overfit_run, "train")[-1][1] < 0.25 * unigram_entropy


def test_train_report(overfit_run, lm_job):
    report = json.loads((overfit_run / "reports" / "train.json").read_text())
    validate_report(report)
    assert report["stage"] == "train" and report["policy"]["name"] == "overfit"
    m = report["metrics"]
    assert m["steps"] == 100 and m["tokens_seen"] == 100 * 8 * 32
    assert m["final_val_perplexity"] == pytest.approx(math.exp(m["final_val_loss"]))
    assert m["parameters"] > 100_000 and m["tokens_per_s"] > 0
    checks = {c["name"]: c for c in report["checks"]}
    assert not checks["heldout_loss_ratio"]["passed"] and checks["finite_losses"]["passed"]
    lineage = {Path(i["path"]).name: i["sha256"] for i in report["inputs"]}
    job_report = overfit_run.parent / "job" / "reports" / "min_length.json"
    assert lineage["min_length.json"] == sha256_file(job_report)
    assert lineage["tokenizer.json"] == sha256_file(lm_job["tokenizer"] / "tokenizer.json")
    assert report["plots"] == ["train_loss.png"]
    assert (overfit_run / "reports" / "train_loss.png").read_bytes()[:4] == b"\x89PNG"
    curve = report["details"]["loss_curve"]
    assert [r["step"] for r in curve["train"]] == list(range(10, 101, 10))
    assert report["details"]["model_config"]["model_type"] == "llama"


@pytest.mark.parametrize("preset", ["llama-tiny", "gpt2-tiny"])
def test_kill_and_resume_reproduces_the_loss_curve(preset, lm_job, tmp_path):
    settings = tiny(model={"preset": preset})
    whole = train(settings, lm_job["job"], lm_job["tokenizer"], tmp_path / "whole", progress=False)
    # Stop after step 6 (between the checkpoints at 4 and 8: the stop writes its own), as a killed run would
    # leave it; and again from a checkpoint with later metric rows that the resumed run must drop.
    part = train(settings, lm_job["job"], lm_job["tokenizer"], tmp_path / "resumed", stop_after=6, progress=False)
    assert not part.completed and part.steps == 6
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 7, "split": "train", "loss": 99.0}) + "\n")
    done = train(settings, lm_job["job"], lm_job["tokenizer"], tmp_path / "resumed", progress=False)
    assert done.completed
    for split in ("train", "val"):
        a, b = metrics(tmp_path / "whole", split), metrics(tmp_path / "resumed", split)
        assert [s for s, _ in a] == [s for s, _ in b]
        np.testing.assert_allclose([x for _, x in b], [x for _, x in a], rtol=0, atol=1e-6)
    from safetensors.torch import load_file

    wa, wb = load_file(whole.model_dir / "model.safetensors"), load_file(done.model_dir / "model.safetensors")
    assert all(np.array_equal(wa[k].numpy(), wb[k].numpy()) for k in wa)


def test_sigkill_mid_run_then_resume(lm_job, tmp_path):
    """A real ``kill -9`` of ``fmaudit train`` once its first checkpoint exists; the same command resumes."""
    import signal
    import time

    settings = tiny(max_steps=150, eval_interval=50, checkpoint_interval=10)
    policy = tmp_path / "kill.yaml"
    policy.write_text(yaml.safe_dump({"version": 1, "name": "kill", "train": settings.model_dump()}))
    args = ["train", "--policy", policy, "--data", lm_job["job"], "--tokenizer", lm_job["tokenizer"],
            "--out", tmp_path / "killed", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "fmaudit", *map(str, args)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((tmp_path / "killed" / "checkpoints").glob("step-*[0-9]")) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and not (tmp_path / "killed" / "model").exists()
    assert run_cli(*args) == 0
    train(settings, lm_job["job"], lm_job["tokenizer"], tmp_path / "whole", progress=False)
    for split in ("train", "val"):
        a, b = metrics(tmp_path / "whole", split), metrics(tmp_path / "killed", split)
        assert [s for s, _ in a] == [s for s, _ in b]
        np.testing.assert_allclose([x for _, x in b], [x for _, x in a], rtol=0, atol=1e-6)


def test_resume_with_other_settings_is_refused(lm_job, tmp_path):
    train(tiny(max_steps=2, eval_interval=2), lm_job["job"], lm_job["tokenizer"], tmp_path / "run", stop_after=1,
          progress=False)
    policy = tmp_path / "other.yaml"
    policy.write_text(yaml.safe_dump({"version": 1, "name": "other",
                                      "train": tiny(max_steps=2, eval_interval=2, lr=1e-3).model_dump()}))
    code = run_cli("train", "--policy", policy, "--data", lm_job["job"], "--tokenizer", lm_job["tokenizer"],
                   "--out", tmp_path / "run", "--no-progress")
    assert code == 2


def test_bad_inputs_exit_2(lm_job, tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump({"version": 1, "name": "p", "train": tiny(max_steps=1).model_dump()}))
    common = ["train", "--policy", policy, "--out", tmp_path / "run", "--no-progress"]
    assert run_cli(*common, "--data", tmp_path / "nothing", "--tokenizer", lm_job["tokenizer"]) == 2
    assert run_cli(*common, "--data", lm_job["job"], "--tokenizer", tmp_path) == 2
    no_train = tmp_path / "no_train.yaml"
    no_train.write_text("version: 1\nname: x\n")
    assert run_cli("train", "--policy", no_train, "--data", lm_job["job"], "--tokenizer", lm_job["tokenizer"],
                   "--out", tmp_path / "run") == 2
    too_long = tmp_path / "long.yaml"
    too_long.write_text(yaml.safe_dump({"version": 1, "name": "l", "train": tiny(max_steps=1, seq_len=100_000).model_dump()}))
    assert run_cli("train", "--policy", too_long, "--data", lm_job["job"], "--tokenizer", lm_job["tokenizer"],
                   "--out", tmp_path / "run2", "--no-progress") == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DIST = dict(global_batch=8, max_steps=4, eval_interval=2, checkpoint_interval=100)


@pytest.fixture(scope="module")
def single_process_run(lm_job, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    assert train(tiny(**DIST), lm_job["job"], lm_job["tokenizer"], out, progress=False).completed
    return out


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_equal_one(mode, single_process_run, lm_job, tmp_path):
    """torchrun, 2 CPU processes, gloo: each takes half of every global batch of 8 sequences. FSDP also stops
    after step 3 and resumes from its (gathered, full) checkpoint."""
    policy = tmp_path / f"{mode}.yaml"
    policy.write_text(yaml.safe_dump({"version": 1, "name": mode, "train": tiny(**DIST, distributed=mode).model_dump()}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "fmaudit", "train",
           "--policy", str(policy), "--data", str(lm_job["job"]), "--tokenizer", str(lm_job["tokenizer"]),
           "--out", str(tmp_path / "two"), "--no-progress"]
    for extra in (["--stop-after", "3"] if mode == "fsdp" else []), []:
        proc = subprocess.run(cmd + extra, env=env, capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "two" / "reports" / "train.json").read_text())
    assert report["metrics"]["processes"] == 2 and report["details"]["hardware"]["distributed"] == mode
    for split in ("train", "val"):
        a, b = metrics(single_process_run, split), metrics(tmp_path / "two", split)
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) >= 3
        # Same sequences per step; only the order of floating-point sums differs.
        np.testing.assert_allclose([x for _, x in b], [x for _, x in a], rtol=0, atol=1e-4)


def test_train_section_errors_name_file_field_and_line(tmp_path):
    from fmaudit.errors import PolicyError
    from fmaudit.policy import load_policy

    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nname: bad\ntrain:\n  seq_len: 64\n  micro_batch: 0\n  max_steps: 3\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml:5: train\.micro_batch"):
        load_policy(path)
    path.write_text("version: 1\nname: bad\ntrain:\n  model: {preset: llama-huge}\n  max_steps: 3\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml:4: train\.model.*llama-huge"):
        load_policy(path)
    for name in ("default", "demo"):
        assert load_policy(ROOT / "policies" / f"{name}.yaml").model.train is not None
