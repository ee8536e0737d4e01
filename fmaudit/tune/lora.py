"""LoRA (low-rank adapters, Hu et al. 2021) through peft, for model stages that fine-tune large models.

A stage with a ``lora:`` setting (:class:`LoraSettings`; null = full fine-tune) passes
:func:`adapter_wrapper` to :func:`fmaudit.core.train.fine_tune`: the loaded model is frozen and wrapped with
trainable adapters, the run's checkpoints hold the adapters only (``adapter_model.safetensors``, resumed
exactly like a full run), and :func:`merge_adapters` folds the final adapters into the base weights
(``merge_and_unload``) and writes a plain transformers folder, so every downstream command loads it unchanged.

Memory: the optimizer holds moments for the adapters only, and no gradient of a base weight is ever kept.
peft is an optional package (``pip install 'fmaudit[lora]'``); :func:`check_available` says so (exit 2).
peft and torch are imported inside the functions that use them.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Callable, ClassVar, Literal, Optional, Union

from pydantic import Field

from fmaudit.core.checkpoint import ADAPTER_WEIGHTS
from fmaudit.errors import InputError
from fmaudit.settings import Strict


class LoraSettings(Strict):
    """LoRA adapters: ``W + (alpha / r) * B @ A`` on the target modules, only A and B trained."""

    requires: ClassVar[dict[str, str]] = {"peft": "lora"}

    r: int = Field(8, ge=1, le=4096, description="Rank of the adapters.")
    alpha: float = Field(16.0, gt=0, description="Scale numerator: the update is multiplied by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: Optional[Union[list[str], Literal["all-linear"]]] = Field(
        None, description="Module names (or suffixes) that get adapters, or 'all-linear'; null: peft's default "
                          "for the architecture (q_proj and v_proj on llama, c_attn on gpt2).")


def check_available(what: str) -> None:
    """InputError (exit 2) naming the extra when peft is not installed."""
    from fmaudit.registry import check_requires

    check_requires(LoraSettings, what)


def add_adapters(model, s: LoraSettings, seed: int):
    """``model`` frozen and wrapped in a peft model with fresh adapters (B = 0, so its outputs are unchanged);
    A is drawn from ``seed`` without touching the global RNG stream the training loop continues."""
    import torch
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=s.r, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=s.target_modules,
                        bias="none", task_type="CAUSAL_LM")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            wrapped = get_peft_model(model, config)
        except ValueError as e:  # no module matches, or an architecture without a default target
            raise InputError(f"lora.target_modules: {e}") from None
    # peft saves whole embedding matrices beside their adapters when embed_tokens or lm_head is a target
    # (save_embedding_layers="auto"); they are frozen here, so checkpoints keep the adapters only.
    wrapped.save_pretrained = functools.partial(wrapped.save_pretrained, save_embedding_layers=False)
    return wrapped


def parameter_counts(model) -> dict:
    """Trainable and total parameters of ``model`` (each shared tensor once)."""
    seen: dict[int, tuple[int, bool]] = {}
    for p in model.parameters():
        seen.setdefault(id(p), (p.numel(), p.requires_grad))
    return {"trainable_parameters": sum(n for n, t in seen.values() if t),
            "total_parameters": sum(n for n, _ in seen.values())}


def adapter_wrapper(s: LoraSettings, seed: int, record: Optional[dict] = None) -> Callable:
    """The ``wrap_model`` hook of :func:`fmaudit.core.train.fine_tune`: adds adapters and writes the
    settings and parameter counts into ``record`` (for the stage's report)."""
    def wrap(model):
        wrapped = add_adapters(model, s, seed)
        if record is not None:
            record.update(describe(s), **parameter_counts(wrapped))
        return wrapped
    return wrap


def describe(s: LoraSettings) -> dict:
    return {"r": s.r, "alpha": s.alpha, "dropout": s.dropout, "target_modules": s.target_modules}


def merge_adapters(base_dir: Path, adapter_dir: Path, out: Path, device=None) -> Path:
    """Load ``base_dir`` (the run's initial checkpoint) with the adapters of ``adapter_dir`` (a finished run's
    model folder), merge them into the weights and write a plain transformers folder ``out`` (safetensors, the
    run's tokenizer with its chat template), atomically."""
    from peft import PeftModel
    from transformers.utils import logging as hf_logging

    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.core.tokenizer import load_tokenizer

    if not (Path(adapter_dir) / ADAPTER_WEIGHTS).exists():
        raise InputError(f"{adapter_dir}: no {ADAPTER_WEIGHTS} (not a LoRA run's model folder)")
    base, _ = load_checkpoint(base_dir, device=device)
    merged = PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=False).merge_and_unload()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    hf_logging.disable_progress_bar()
    try:
        merged.save_pretrained(str(tmp), safe_serialization=True)
    finally:
        hf_logging.enable_progress_bar()
    load_tokenizer(adapter_dir).save_pretrained(str(tmp))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out
