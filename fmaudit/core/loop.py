"""The training loop shared by pre-training and fine-tuning: gradient accumulation, optimizer step, logging,
held-out evaluation and checkpoints, each in its own function, over any :class:`~fmaudit.core.sources.DataSource`.

    RUN/checkpoints/step-N/     save_pretrained (safetensors) + tokenizer + trainer_state.pt
    RUN/metrics.jsonl           one row per log interval (train) and per evaluation (val)

A checkpoint holds the weights, optimizer, scheduler, loop state (:class:`LoopState`: step, data position,
losses not yet logged, timing) and the RNG state, so a resumed run continues the loss curve exactly (dropout
included). Under ``torchrun`` each process takes its share of every global batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from fmaudit.core import checkpoint as ckpt
from fmaudit.core import optim
from fmaudit.core.config import TrainSettings
from fmaudit.core.data import SampleOrder
from fmaudit.core.distributed import Dist
from fmaudit.core.sources import DataSource
from fmaudit.errors import InputError, UsageError


@dataclass
class LoopState:
    """What the loop has done: saved in every checkpoint, restored on resume."""

    step: int = 0
    samples: int = 0  # training samples consumed over all processes (the data position)
    tokens: int = 0  # real (unpadded) tokens trained on over all processes
    pending: list = field(default_factory=list)  # (loss, grad_norm, lr) of the steps since the last log row
    initial_val_loss: Optional[float] = None
    val_loss: Optional[float] = None  # the latest held-out loss
    timed_tokens: int = 0  # tokens and seconds of the timed intervals (the first one warms up, untimed)
    timed_s: float = 0.0

    def to_saved(self) -> dict:
        return {**asdict(self), "pending": [(float(loss), float(g), lr) for loss, g, lr in self.pending]}

    @classmethod
    def from_saved(cls, saved: dict) -> "LoopState":
        pending = [(torch.tensor(loss), torch.tensor(g), lr) for loss, g, lr in saved["pending"]]
        return cls(saved["step"], saved["samples"], saved["tokens"], pending, saved["initial_val_loss"],
                   saved["val_loss"], saved["timed_tokens"], saved["timed_s"])


@dataclass
class Trainer:
    """Everything one run's loop works with, built once by :func:`make_trainer`."""

    settings: TrainSettings
    run: Path
    dist: Dist
    source: DataSource
    model: Any  # the plain model (weights are saved from it)
    wrapped: Any  # DDP/FSDP/compiled view of it (forward passes go through it)
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    autocast: Callable
    scaler: Any
    accum: int
    total_steps: int
    order: SampleOrder
    val: list
    identity: dict  # what the run trains (settings, data, initial weights): a resume must match it
    stop_after: Optional[int] = None

    @property
    def ckpt_dir(self) -> Path:
        return self.run / "checkpoints"

    @property
    def global_batch(self) -> int:
        return self.settings.micro_batch * self.accum * self.dist.world


@dataclass
class _Interval:
    """Tokens and wall time since the last log row; evaluation and checkpoint time is not training time."""

    tokens: int = 0
    started: float = field(default_factory=time.time)

    def elapsed(self) -> float:
        return time.time() - self.started


def make_trainer(settings: TrainSettings, run: Path, d: Dist, source: DataSource, model, tokenizer,
                 identity: dict, stop_after: Optional[int] = None) -> tuple[Trainer, LoopState]:
    """Wrap the model, make optimizer and scheduler, and resume from the newest checkpoint of ``run`` if any."""
    try:
        accum = settings.accum_steps(d.world)
    except ValueError as e:
        raise UsageError(f"train.global_batch: {e}") from None
    total = settings.total_steps(d.world)
    last = ckpt.latest_checkpoint(run / "checkpoints")
    saved = load_weights(last, model, identity) if last is not None else None
    wrapped = optim.wrap(model, settings, d)  # FSDP replaces the parameters: the optimizer is made after wrapping
    optimizer = optim.make_optimizer(model, settings, d.device)
    scheduler = optim.make_scheduler(optimizer, settings, total)
    autocast, scaler = optim.precision(settings.precision, d.device)
    val = source.val_batches(d.rank, d.world, settings.micro_batch, settings.eval_batches * settings.micro_batch)
    t = Trainer(settings, run, d, source, model, wrapped, tokenizer, optimizer, scheduler, autocast, scaler, accum,
                total, SampleOrder(len(source), settings.seed), val, identity, stop_after)
    state = LoopState()
    if saved is not None:
        state = _resume(t, saved)
    elif d.main:
        (run / "metrics.jsonl").unlink(missing_ok=True)
    if d.main:
        _truncate_metrics(run / "metrics.jsonl", state.step)
    d.barrier()
    return t, state


def run_loop(t: Trainer, state: LoopState, progress: bool = True) -> LoopState:
    """Train from ``state`` to the last step (or ``t.stop_after``), logging, evaluating and checkpointing."""
    log = MetricsLog(t.run / "metrics.jsonl", t.dist.main)
    bar = _progress(t.total_steps, state.step, progress and t.dist.main)
    if state.initial_val_loss is None:
        row = evaluate(t)
        state.initial_val_loss = state.val_loss = row["loss"]
        log.write({"step": 0, **row})
    t.model.train()
    interval = _Interval()
    while state.step < t.total_steps:
        loss, tokens = accumulate_gradients(t, state)
        grad_norm, lr = optimizer_step(t)
        state.step += 1
        state.samples += t.global_batch
        state.tokens += tokens
        interval.tokens += tokens
        state.pending.append((t.dist.mean(loss), grad_norm.detach(), lr))
        if state.step % t.settings.log_interval == 0 or state.step == t.total_steps:
            log_train_row(t, state, interval, log, bar)
            interval = _Interval()
        paused = time.time()
        if state.step % t.settings.eval_interval == 0 or state.step == t.total_steps:
            row = evaluate(t)
            state.val_loss = row["loss"]
            log.write({"step": state.step, **row})
        if state.step % t.settings.checkpoint_interval == 0 or state.step in (t.total_steps, t.stop_after):
            save_checkpoint(t, state)
        interval.started += time.time() - paused
        if state.step == t.stop_after:
            break
    bar.close()
    return state


def accumulate_gradients(t: Trainer, state: LoopState) -> tuple[torch.Tensor, int]:
    """Forward and backward over this process's micro-batches of the next global batch; returns the mean
    loss (a device tensor: no sync) and the real tokens of the whole global batch."""
    s, d = t.settings, t.dist
    loss_sum = torch.zeros((), device=d.device)
    tokens = 0
    for m in range(t.accum):
        base = state.samples + (m * d.world + d.rank) * s.micro_batch
        batch = t.source.batch([t.order(base + j) for j in range(s.micro_batch)])
        tokens += batch.pop("tokens")
        batch = {k: v.to(d.device, non_blocking=True) for k, v in batch.items()}
        sync = t.wrapped.no_sync() if d.world > 1 and m < t.accum - 1 and hasattr(t.wrapped, "no_sync") \
            else contextlib.nullcontext()
        with sync, t.autocast():
            loss = t.source.loss(t.wrapped, batch) / t.accum
        t.scaler.scale(loss).backward()
        loss_sum += loss.detach()
    return loss_sum, int(d.sum([float(tokens)])[0])


def optimizer_step(t: Trainer) -> tuple[torch.Tensor, float]:
    """Clip, step (through the fp16 scaler), zero the gradients and advance the schedule; returns the
    gradient norm and the learning rate the step used."""
    t.scaler.unscale_(t.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(t.model.parameters(), t.settings.grad_clip or float("inf"))
    t.scaler.step(t.optimizer)
    t.scaler.update()
    t.optimizer.zero_grad(set_to_none=True)
    lr = t.scheduler.get_last_lr()[0]
    t.scheduler.step()
    return grad_norm, lr


def log_train_row(t: Trainer, state: LoopState, interval: _Interval, log: "MetricsLog", bar) -> None:
    """One metrics.jsonl row for the steps since the last one (one device sync per row)."""
    losses = [float(x[0]) for x in state.pending]
    elapsed = interval.elapsed()
    if state.step > t.settings.log_interval or state.step == t.total_steps:  # the first interval warms up
        state.timed_tokens += interval.tokens
        state.timed_s += elapsed
    log.write({"step": state.step, "split": "train", "loss": sum(losses) / len(losses),
               "grad_norm": float(state.pending[-1][1]), "lr": state.pending[-1][2], "tokens": state.tokens,
               "epoch": round(t.order.epoch(state.samples), 4), "tokens_per_s": interval.tokens / elapsed})
    bar.update(state.step - bar.n)
    bar.set_postfix(loss=f"{losses[-1]:.3f}", tok_s=f"{interval.tokens / elapsed:,.0f}")
    state.pending = []


def evaluate(t: Trainer) -> dict:
    """Held-out loss over this process's share of the held-out samples, summed over processes."""
    was_training = t.wrapped.training
    t.wrapped.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in t.val:
            batch = {k: v.to(t.dist.device) for k, v in batch.items() if torch.is_tensor(v)}
            with t.autocast():
                part, count = t.source.val_terms(t.wrapped, batch)
            total, n = total + part, n + count
    t.wrapped.train(was_training)
    total, n = t.dist.sum([total, float(n)])
    return {"split": "val", "loss": total / n, "ppl": math.exp(min(total / n, 50)), "tokens": int(n)}


def save_checkpoint(t: Trainer, state: LoopState) -> None:
    """``RUN/checkpoints/step-N``: weights and tokenizer, then optimizer, scheduler, loop state and RNG."""
    d, s = t.dist, t.settings
    if d.active and s.distributed == "fsdp":
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                             get_optimizer_state_dict)

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state = get_model_state_dict(t.model, options=opts)
        optim_state = get_optimizer_state_dict(t.model, t.optimizer, options=opts)
    else:
        model_state, optim_state = None, t.optimizer.state_dict()
    if d.main:
        trainer_state = {**state.to_saved(), "optimizer": optim_state, "scheduler": t.scheduler.state_dict(),
                         "rng_cpu": torch.get_rng_state(), "identity": json.dumps(t.identity, sort_keys=True),
                         "world_size": d.world}
        if torch.cuda.is_available():
            trainer_state["rng_cuda"] = torch.cuda.get_rng_state()
        path = t.ckpt_dir / f"step-{state.step:08d}"
        ckpt.save_training_checkpoint(path, t.model, t.tokenizer, trainer_state, model_state)
        ckpt.prune_checkpoints(t.ckpt_dir, s.keep_checkpoints)
    d.barrier()


def load_weights(path: Path, model, identity: dict) -> dict:
    """Load a checkpoint's weights into the (unwrapped) model; returns its trainer state."""
    from safetensors.torch import load_file

    saved = ckpt.load_trainer_state(path)
    if json.loads(saved.get("identity", "null")) != json.loads(json.dumps(identity, sort_keys=True)):
        raise UsageError(f"{path.parent.parent}: holds a run with other train settings or data; resume with the "
                         "same policy and inputs, or train into a new --out")
    device = str(next(model.parameters()).device)
    if (path / ckpt.ADAPTER_WEIGHTS).exists():  # a peft model's checkpoint: its adapters only
        from peft import set_peft_model_state_dict

        loaded = set_peft_model_state_dict(model, load_file(str(path / ckpt.ADAPTER_WEIGHTS), device=device))
        if loaded.unexpected_keys:
            raise InputError(f"{path}: adapter weights do not fit the model (e.g. {sorted(loaded.unexpected_keys)[0]})")
        return saved
    weights = load_file(str(path / "model.safetensors"), device=device)
    loaded = model.load_state_dict(weights, strict=False)  # tied weights are saved once
    by_storage: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_storage.setdefault(p.data_ptr(), []).append(name)
    tied = {n for names in by_storage.values() if len(names) > 1 for n in names}
    if set(loaded.missing_keys) - tied or loaded.unexpected_keys:
        bad = sorted(set(loaded.missing_keys) - tied) or sorted(loaded.unexpected_keys)
        raise InputError(f"{path}: checkpoint weights do not fit the model (e.g. {bad[0]})")
    return saved


def _resume(t: Trainer, saved: dict) -> LoopState:
    """Restore optimizer, scheduler and RNG; returns the loop state."""
    if t.dist.active and t.settings.distributed == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(t.model, t.optimizer, saved["optimizer"],
                                 options=StateDictOptions(full_state_dict=True))
    else:
        t.optimizer.load_state_dict(saved["optimizer"])
    t.scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng_cpu"])
    if "rng_cuda" in saved and torch.cuda.is_available():
        torch.cuda.set_rng_state(saved["rng_cuda"])
    return LoopState.from_saved(saved)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric rows written after the checkpoint a run resumes from (a killed run may have logged more)."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(r + "\n" for r in rows))


class MetricsLog:
    """Appends rows to metrics.jsonl (main process only)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def write(self, row: dict) -> None:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({**row, "time": round(time.time(), 3)}) + "\n")


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", unit="step")
