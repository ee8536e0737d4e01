"""The model-building core: tokenizer, model presets, pre-training, checkpoints, generation and evaluation.

Names are imported lazily (``from fmaudit.core import load_checkpoint`` loads torch only then), so that
policy validation, which reads :mod:`fmaudit.core.config`, stays fast. Training and generation live in
modules of the same name: ``from fmaudit.core.train import train``, ``from fmaudit.core.generate import generate``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainSettings": "config", "ModelSettings": "config", "PRESETS": "config",
    "train_tokenizer": "tokenizer", "load_tokenizer": "tokenizer",
    "build_config": "model", "build_model": "model",
    "model_size": "sizing",
    "TrainResult": "train",
    "load_checkpoint": "checkpoint", "check_checkpoint": "checkpoint",
    "sequence_logprobs": "evaluate", "continuation_logprobs": "evaluate", "perplexity": "evaluate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fmaudit.core' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fmaudit.core.{_EXPORTS[name]}"), name)
