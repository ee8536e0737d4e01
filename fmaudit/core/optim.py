"""Optimizer, learning-rate schedule, precision and wrapping (DDP/FSDP, compile) of the training loop."""

from __future__ import annotations

import contextlib
import math

import torch

from fmaudit.core.config import TrainSettings
from fmaudit.core.distributed import Dist
from fmaudit.errors import UsageError


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


def make_optimizer(model, s: TrainSettings, device: torch.device) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; weight decay on matrices only (not on norms, biases or anything 1-D)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=s.lr, betas=(s.beta1, s.beta2), fused=device.type == "cuda")


def make_scheduler(optimizer, s: TrainSettings, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LRSchedule(s.warmup_steps, total_steps, s.min_lr_ratio,
                                                                   s.schedule))


def precision(kind: str, device: torch.device):
    """An autocast context factory and a gradient scaler (active for fp16 only)."""
    if kind == "auto":
        kind = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if kind == "fp16" and device.type != "cuda":
        raise UsageError("train.precision: fp16 needs a GPU (use bf16 or fp32 on CPU)")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(kind)
    scaler = torch.amp.GradScaler(device.type, enabled=kind == "fp16")
    if dtype is None:
        return contextlib.nullcontext, scaler
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


def wrap(model, s: TrainSettings, d: Dist):
    """DDP or FSDP under torchrun (per ``s.distributed``), then torch.compile if asked for."""
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
