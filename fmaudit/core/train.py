"""Pre-training on the next-token objective: the whole loop, nanoGPT-style, in one file.

    RUN/tokens/                 the corpus tokenized once (see fmaudit.core.data)
    RUN/checkpoints/step-N/     save_pretrained (safetensors) + tokenizer + trainer_state.pt
    RUN/model/                  the final model and tokenizer (a plain transformers folder)
    RUN/metrics.jsonl           one row per log interval (train) and per evaluation (val)
    RUN/reports/train.json      the report envelope, with train_loss.png beside it

Run it again with the same ``--out`` and it resumes from the newest checkpoint: same weights, optimizer,
scheduler, data position and RNG, so the loss curve continues exactly as if never interrupted. Under
``torchrun`` each process takes its share of every global batch (DDP, or FSDP for large models).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from fmaudit.core import checkpoint as ckpt
from fmaudit.core.config import TrainSettings
from fmaudit.core.data import PackedSequences, SampleOrder, tokenize_corpus
from fmaudit.core.distributed import Dist, setup, teardown
from fmaudit.core.evaluate import mean_token_loss
from fmaudit.core.model import build_config, build_model
from fmaudit.core.tokenizer import load_tokenizer
from fmaudit.errors import InputError, UsageError


@dataclass
class TrainResult:
    run_dir: Path
    model_dir: Optional[Path]  # None when the run stopped before its last step
    steps: int
    tokens_seen: int
    initial_val_loss: Optional[float]
    final_val_loss: Optional[float]
    tokens_per_s: Optional[float]
    report: Optional[dict]

    @property
    def completed(self) -> bool:
        return self.model_dir is not None


class LRSchedule:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total`` steps (or constant)."""

    def __init__(self, warmup: int, total: int, min_ratio: float, kind: str):
        self.warmup, self.total, self.min_ratio, self.kind = warmup, total, min_ratio, kind

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant" or self.total <= self.warmup:
            return 1.0
        progress = min(1.0, (step - self.warmup) / (self.total - self.warmup))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def train(settings, data_dir, tokenizer_dir, out, *, policy=None, stop_after: Optional[int] = None,
          progress: bool = True, device: Optional[str] = None) -> TrainResult:
    """Train a model from random initialisation on the filtered corpus ``data_dir``.

    ``settings`` is a :class:`TrainSettings` or a policy with a ``train:`` section. ``stop_after`` ends the
    run after that optimizer step (a checkpoint is written there): calling again resumes it.
    """
    from transformers.utils import logging as hf_logging

    settings, policy = _settings_of(settings, policy)
    d = setup(device)
    threads = torch.get_num_threads()
    if d.device.type == "cpu" and settings.cpu_threads:
        torch.set_num_threads(settings.cpu_threads)
    hf_logging.disable_progress_bar()  # save_pretrained's per-checkpoint bar would break the training bar
    try:
        return _train(settings, policy, Path(data_dir), Path(tokenizer_dir), Path(out), d, stop_after, progress)
    finally:
        torch.set_num_threads(threads)
        hf_logging.enable_progress_bar()
        teardown(d)


def _settings_of(settings, policy):
    from fmaudit.policy import Policy

    if isinstance(settings, Policy):
        policy = settings
        settings = policy.model.train
        if settings is None:
            raise UsageError(f"{policy.path or 'policy'}: no train: section")
    if not isinstance(settings, TrainSettings):
        raise TypeError("settings must be TrainSettings or a Policy")
    return settings, policy


def _train(s: TrainSettings, policy, data_dir: Path, tokenizer_dir: Path, run: Path, d: Dist,
           stop_after: Optional[int], progress: bool) -> TrainResult:
    t_start, started_at = time.time(), _now()
    accum = _accum(s, d.world)
    total_steps = s.total_steps(d.world)
    tokenizer = load_tokenizer(tokenizer_dir)
    if d.main:
        tokenize_corpus(data_dir, tokenizer, run / "tokens", s.holdout_fraction, canaries=s.canaries)
    d.barrier()
    meta = json.loads((run / "tokens" / "meta.json").read_text())
    train_set = PackedSequences(run / "tokens" / "train.bin", s.seq_len, meta["dtype"])
    val_set = PackedSequences(run / "tokens" / "val.bin", s.seq_len, meta["dtype"])
    if len(train_set) == 0:
        raise InputError(f"{data_dir}: fewer than seq_len={s.seq_len} training tokens")
    val_per_rank = min(s.eval_batches * s.micro_batch, len(val_set)) // d.world
    if val_per_rank == 0:
        raise InputError(f"{data_dir}: the held-out documents ({meta['tokens']['val']} tokens) make fewer "
                         f"sequences of {s.seq_len} tokens than processes; raise holdout_fraction")
    config = build_config(s.model, _padded(len(tokenizer)), s.seq_len, tokenizer.bos_token_id,
                          tokenizer.eos_token_id, tokenizer.pad_token_id)
    model = build_model(config, s.seed, d.device)
    n_params = sum(p.numel() for p in model.parameters())
    ckpt_dir = run / "checkpoints"
    last = ckpt.latest_checkpoint(ckpt_dir)
    saved = _load_weights(last, model, s) if last is not None else None
    wrapped = _wrap(model, s, d)  # FSDP replaces the parameters: the optimizer is made after wrapping
    optimizer = _optimizer(model, s, d.device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, LRSchedule(s.warmup_steps, total_steps, s.min_lr_ratio, s.schedule))
    autocast, scaler = _precision(s.precision, d.device)
    state = {"step": 0, "samples": 0, "pending": [], "initial_val_loss": None, "timed": [0, 0.0]}
    if saved is not None:
        state = _resume(saved, model, optimizer, scheduler, s, d)
    elif d.main:
        (run / "metrics.jsonl").unlink(missing_ok=True)
    if d.main:
        _truncate_metrics(run / "metrics.jsonl", state["step"])
    d.barrier()

    order = SampleOrder(len(train_set), s.seed)
    global_batch = s.micro_batch * accum * d.world
    val_indices = range(d.rank * val_per_rank, (d.rank + 1) * val_per_rank)

    def evaluate() -> dict:
        batches = (torch.from_numpy(val_set.get(val_indices[i:i + s.micro_batch]))
                   for i in range(0, len(val_indices), s.micro_batch))
        total, n = d.sum(list(mean_token_loss(wrapped, batches, autocast())))
        return {"split": "val", "loss": total / n, "ppl": math.exp(min(total / n, 50)), "tokens": int(n)}

    log = _MetricsLog(run / "metrics.jsonl", d.main)
    bar = _progress(total_steps, state["step"], progress and d.main)
    if state["initial_val_loss"] is None:
        row = evaluate()
        state["initial_val_loss"] = row["loss"]
        log.write({"step": 0, **row})
    model.train()
    t_interval, tokens_interval = time.time(), 0
    while state["step"] < total_steps:
        loss_sum = torch.zeros((), device=d.device)
        for m in range(accum):
            base = state["samples"] + (m * d.world + d.rank) * s.micro_batch
            batch = torch.from_numpy(train_set.get([order(base + j) for j in range(s.micro_batch)]))
            batch = batch.to(d.device, non_blocking=True)
            sync = wrapped.no_sync() if d.world > 1 and m < accum - 1 and hasattr(wrapped, "no_sync") \
                else contextlib.nullcontext()
            with sync, autocast():
                loss = wrapped(input_ids=batch, labels=batch).loss / accum
            scaler.scale(loss).backward()
            loss_sum += loss.detach()
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip or float("inf"))
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        state["step"] += 1
        state["samples"] += global_batch
        tokens_interval += global_batch * s.seq_len
        state["pending"].append((d.mean(loss_sum), grad_norm.detach(), lr))
        step = state["step"]
        if step % s.log_interval == 0 or step == total_steps:
            losses = [float(x[0]) for x in state["pending"]]  # one device sync per log row
            elapsed = time.time() - t_interval
            if step > s.log_interval or step == total_steps:  # the first interval warms up (allocator, compile)
                state["timed"][0] += tokens_interval
                state["timed"][1] += elapsed
            log.write({"step": step, "split": "train", "loss": sum(losses) / len(losses),
                       "grad_norm": float(state["pending"][-1][1]), "lr": lr,
                       "tokens": state["samples"] * s.seq_len, "epoch": round(order.epoch(state["samples"]), 4),
                       "tokens_per_s": tokens_interval / elapsed})
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", tok_s=f"{tokens_interval / elapsed:,.0f}")
            state["pending"], tokens_interval = [], 0
        t_pause = time.time()
        if step % s.eval_interval == 0 or step == total_steps:
            log.write({"step": step, **evaluate()})
        if step % s.checkpoint_interval == 0 or step in (total_steps, stop_after):
            _save(ckpt_dir / f"step-{step:08d}", model, wrapped, optimizer, scheduler, tokenizer, state, s, d)
        if tokens_interval == 0:
            t_interval = time.time()  # a new interval starts after evaluation and checkpoint
        else:
            t_interval += time.time() - t_pause  # evaluation and checkpoint time is not training time
        if step == stop_after:
            break
    bar.close()
    timed_tokens, timed_s = state["timed"]
    tokens_per_s = timed_tokens / timed_s if timed_s else None
    result = TrainResult(run, None, state["step"], state["samples"] * s.seq_len, state["initial_val_loss"],
                         log.last_val_loss(), tokens_per_s, None)
    if state["step"] < total_steps:
        return result
    if d.main:
        from fmaudit.core.report import write_train_report

        result.model_dir = run / "model"
        _export(ckpt_dir / f"step-{state['step']:08d}", result.model_dir)
        result.report = write_train_report(
            run, s, policy, config, n_params, meta, data_dir, tokenizer_dir, result, d,
            started_at=started_at, wall_s=time.time() - t_start)
    d.barrier()
    result.model_dir = run / "model"
    return result


def _accum(s: TrainSettings, world: int) -> int:
    try:
        return s.accum_steps(world)
    except ValueError as e:
        raise UsageError(f"train.global_batch: {e}") from None


def _padded(vocab: int, multiple: int = 64) -> int:
    """Embedding rows rounded up to a multiple of 64 (faster matrix multiplies; extra rows go unused)."""
    return -(-vocab // multiple) * multiple


def _optimizer(model, s: TrainSettings, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on norms, biases or anything 1-D)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=(s.beta1, s.beta2), fused=device.type == "cuda")


def _precision(precision: str, device: torch.device):
    """An autocast context factory and a gradient scaler (active for fp16 only)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UsageError("train.precision: fp16 needs a GPU (use bf16 or fp32 on CPU)")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if dtype is None:
        return contextlib.nullcontext, scaler
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


def _wrap(model, s: TrainSettings, d: Dist):
    if d.active and s.distributed == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in model.model.layers if hasattr(model, "model") else model.transformer.h:
            fully_shard(layer)
        fully_shard(model)
        wrapped = model
    elif d.active:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    else:
        wrapped = model
    return torch.compile(wrapped) if s.compile else wrapped


def _save(path: Path, model, wrapped, optimizer, scheduler, tokenizer, state: dict, s: TrainSettings, d: Dist):
    """Checkpoint: weights and tokenizer, then optimizer, scheduler, data position and RNG (rank 0 writes)."""
    if d.active and s.distributed == "fsdp":
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                             get_optimizer_state_dict)

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state = get_model_state_dict(model, options=opts)
        optim_state = get_optimizer_state_dict(model, optimizer, options=opts)
    else:
        model_state, optim_state = None, optimizer.state_dict()
    if d.main:
        pending = [(float(loss), float(g), lr) for loss, g, lr in state["pending"]]
        trainer_state = {**state, "pending": pending, "optimizer": optim_state, "scheduler": scheduler.state_dict(),
                         "rng_cpu": torch.get_rng_state(), "settings": s.model_dump_json(), "world_size": d.world}
        if torch.cuda.is_available():
            trainer_state["rng_cuda"] = torch.cuda.get_rng_state()
        ckpt.save_training_checkpoint(path, model, tokenizer, trainer_state, model_state)
        ckpt.prune_checkpoints(path.parent, s.keep_checkpoints)
    d.barrier()


def _load_weights(path: Path, model, s: TrainSettings) -> dict:
    """Load a checkpoint's weights into the (unwrapped) model; returns its trainer state."""
    from safetensors.torch import load_file

    saved = ckpt.load_trainer_state(path)
    if json.loads(saved["settings"]) != json.loads(s.model_dump_json()):
        raise UsageError(f"{path.parent.parent}: holds a run with other train settings; resume with the same "
                         "policy, or train into a new --out")
    weights = load_file(str(path / "model.safetensors"), device=str(next(model.parameters()).device))
    loaded = model.load_state_dict(weights, strict=False)  # tied weights are saved once
    by_storage: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_storage.setdefault(p.data_ptr(), []).append(name)
    tied = {n for names in by_storage.values() if len(names) > 1 for n in names}
    if set(loaded.missing_keys) - tied or loaded.unexpected_keys:
        bad = sorted(set(loaded.missing_keys) - tied) or sorted(loaded.unexpected_keys)
        raise InputError(f"{path}: checkpoint weights do not fit the model (e.g. {bad[0]})")
    return saved


def _resume(saved: dict, model, optimizer, scheduler, s: TrainSettings, d: Dist) -> dict:
    """Restore optimizer, scheduler and RNG; returns the loop state (step, data position, pending losses)."""
    if d.active and s.distributed == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(model, optimizer, saved["optimizer"], options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng_cpu"])
    if "rng_cuda" in saved and torch.cuda.is_available():
        torch.cuda.set_rng_state(saved["rng_cuda"])
    pending = [(torch.tensor(loss), torch.tensor(g), lr) for loss, g, lr in saved["pending"]]
    return {"step": saved["step"], "samples": saved["samples"], "pending": pending,
            "initial_val_loss": saved["initial_val_loss"], "timed": saved["timed"]}


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric rows written after the checkpoint a run resumes from (a killed run may have logged more)."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(r + "\n" for r in rows))


def _export(checkpoint: Path, model_dir: Path) -> None:
    """The final checkpoint without its trainer state: a plain transformers model folder."""
    import shutil

    tmp = model_dir.with_name(model_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp, ignore=shutil.ignore_patterns(ckpt.TRAINER_STATE))
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(tmp, model_dir)


class _MetricsLog:
    """Appends rows to metrics.jsonl (main process only) and remembers the last held-out loss."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled, self._val = path, enabled, None
        if path.exists():
            vals = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            self._val = next((r["loss"] for r in reversed(vals) if r["split"] == "val"), None)

    def write(self, row: dict) -> None:
        if row["split"] == "val":
            self._val = row["loss"]
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({**row, "time": round(time.time(), 3)}) + "\n")

    def last_val_loss(self) -> Optional[float]:
        return self._val


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", unit="step")


def _now() -> str:
    from fmaudit.reports.envelope import now_iso

    return now_iso()
