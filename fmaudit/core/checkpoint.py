"""Checkpoints: safe loading of any local transformers causal-LM folder, and fmaudit's training checkpoints.

Loading is safe by default: safetensors weights only (pickle files run code when loaded) and no custom
code from the folder (``trust_remote_code``). Each needs an explicit flag. A folder that is not a causal-LM
checkpoint, lacks a tokenizer or holds corrupt weights raises :class:`~fmaudit.errors.InputError`.

A training checkpoint is ``save_pretrained`` output (config, safetensors, tokenizer) plus
``trainer_state.pt``: optimizer, scheduler, data position and RNG state, written last. A LoRA run's
checkpoint holds its adapters (``adapter_model.safetensors``, ``adapter_config.json``) instead of the weights.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

from fmaudit.core.tokenizer import load_tokenizer
from fmaudit.errors import InputError

SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TRAINER_STATE = "trainer_state.pt"
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # a LoRA run's checkpoint (peft's save_pretrained): adapters only


def check_checkpoint(path: str | os.PathLike, trust_remote_code: bool = False, allow_pickle: bool = False):
    """Validate a checkpoint folder without loading its weights; returns its config."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such checkpoint folder")
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a transformers checkpoint (no config.json)")
    try:
        raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}/config.json: not valid JSON: {e}") from None
    if raw.get("auto_map") and not trust_remote_code:
        raise InputError(f"{path}: the model needs custom code from the folder (config auto_map); "
                         "refused unless --trust-remote-code is given")
    try:
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code, local_files_only=True)
    except Exception as e:
        raise InputError(f"{path}/config.json: cannot be read as a transformers config: {e}") from None
    if not (trust_remote_code and raw.get("auto_map")):
        causal = {n for v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values() for n in ((v,) if isinstance(v, str) else v)}
        saved_as = raw.get("architectures") or []
        if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (saved_as and not causal & set(saved_as)):
            what = ", ".join(saved_as) or config.model_type
            raise InputError(f"{path}: not a causal language model (saved as {what})")
    weights = _safetensors_files(path)
    if not weights:
        pickles = [f for f in PICKLES if (path / f).exists()]
        if not pickles:
            raise InputError(f"{path}: no weights (expected model.safetensors)")
        if not allow_pickle:
            raise InputError(f"{path}: weights only in pickle format ({pickles[0]}), which can run code when "
                             "loaded; refused unless --allow-pickle is given (or convert them to safetensors)")
    stored = sum(_check_safetensors(f) for f in weights)
    if weights and not raw.get("auto_map"):
        needed = _parameters_of(path, config)
        if needed > 2 * stored + 1_000_000:  # ties, buffers and rounding aside, the weights cannot fill it
            raise InputError(f"{path}: config.json describes a model of {needed:,} parameters, but the weights "
                             f"hold {stored:,}; refused before building it")
    return config


def _parameters_of(path: Path, config) -> int:
    """Parameters of the model ``config`` describes, sized on the meta device without building it."""
    from fmaudit.core.sizing import estimate_parameters

    try:
        return estimate_parameters(config)
    except Exception as e:  # transformers and torch raise many types for a config that cannot make a model
        raise InputError(f"{path}/config.json: no model can be built from this config: {e}") from None


def check_fits(path: Path, config, device: Any = None, dtype: Any = None) -> int:
    """InputError when the model of ``config`` cannot fit in the memory free on ``device``, checked from the
    config before anything is built (a config asking for a million layers is refused, not built)."""
    import torch

    from fmaudit.core.sizing import available_memory, human

    params = _parameters_of(path, config)
    chosen = dtype if dtype not in (None, "auto") else getattr(config, "dtype", None) or torch.float32
    if isinstance(chosen, str):
        chosen = getattr(torch, chosen, torch.float32)
    need = params * torch.empty((), dtype=chosen).element_size()
    free = available_memory(device)
    if need > 0.9 * free:
        raise InputError(f"{path}: the model has {params:,} parameters ({human(need, 'B')} as {chosen}), more than "
                         f"the memory free on {device or 'cpu'} ({human(free, 'B')}); refused before building it")
    return params


def _safetensors_files(path: Path) -> list[Path]:
    if (path / SAFETENSORS[0]).exists():
        return [path / SAFETENSORS[0]]
    index = path / SAFETENSORS[1]
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as e:
            raise InputError(f"{index}: corrupt safetensors index: {e}") from None
        inside = path.resolve()
        outside = [s for s in shards if not isinstance(s, str) or Path(s).is_absolute()
                   or not (path / s).resolve().is_relative_to(inside)]
        if outside:
            raise InputError(f"{index}: names shard {outside[0]!r}, outside the checkpoint folder; refused")
        missing = [s for s in shards if not (path / s).exists()]
        if missing:
            raise InputError(f"{path}: safetensors shard {missing[0]} named in the index is missing")
        return [path / s for s in shards]
    return []


def _check_safetensors(file: Path) -> int:
    """The number of values the safetensors file holds (headers only; no tensor is read)."""
    from math import prod

    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            return sum(prod(f.get_slice(k).get_shape()) for k in f.keys())
    except (SafetensorError, OSError) as e:
        raise InputError(f"{file}: corrupt safetensors file: {e}") from None


def load_checkpoint(path: str | os.PathLike, *, trust_remote_code: bool = False, allow_pickle: bool = False,
                    device: Any = None, dtype: Any = None, device_map: Any = None):
    """``(model, tokenizer)`` of a local causal-LM folder, loaded safely (see the module docstring).

    ``device_map`` (for example ``"auto"``, which needs accelerate) spreads a checkpoint too large for one
    device over the GPUs and CPU memory there are; ``device`` is then ignored."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    path = Path(path)
    config = check_checkpoint(path, trust_remote_code, allow_pickle)
    if device_map is None and not getattr(config, "auto_map", None):
        check_fits(path, config, device, dtype)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    hf_logging.disable_progress_bar()
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            str(path), trust_remote_code=trust_remote_code, local_files_only=True, output_loading_info=True,
            use_safetensors=None if allow_pickle else True, dtype=dtype,
            **({"device_map": device_map} if device_map is not None else {}))
    except Exception as e:
        raise InputError(f"{path}: cannot load the model: {e}") from None
    finally:
        hf_logging.enable_progress_bar()
    if info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        raise InputError(f"{path}: the weights lack {len(missing)} tensors the config needs (e.g. {missing[0]})")
    model.eval()
    return (model.to(device) if device is not None and device_map is None else model), tokenizer


IDENTITY_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "chat_template.jinja")


def checkpoint_files(path: str | os.PathLike) -> list[Path]:
    """The files that make a checkpoint what it is: config, tokenizer and weights (safetensors and their index),
    sorted by name; trainer state, reports and anything else in the folder are left out."""
    path = Path(path)
    return sorted(p for p in path.iterdir() if p.is_file() and (
        p.name in IDENTITY_FILES or p.suffix == ".safetensors" or p.name.endswith(".safetensors.index.json")))


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """The identity of a checkpoint folder: sha256 over the name and sha256 of each of its
    :func:`checkpoint_files`. Model stages record it in lineage, audits in their protocol, influence caches key
    on it: the same weights give the same hash everywhere."""
    import hashlib

    from fmaudit.corpus import sha256_file

    h = hashlib.sha256()
    for f in checkpoint_files(path):
        h.update(f"{f.name}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def save_training_checkpoint(path: Path, model, tokenizer, state: dict, model_state: Optional[dict] = None) -> None:
    """Write ``path`` atomically: model (safetensors) and tokenizer, then ``trainer_state.pt``."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True, state_dict=model_state)
    tokenizer.save_pretrained(str(tmp))
    torch.save(state, tmp / TRAINER_STATE)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def latest_checkpoint(folder: Path) -> Optional[Path]:
    """The newest complete ``step-N`` checkpoint in ``folder``, or None."""
    done = [p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")
            and (p / TRAINER_STATE).exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def load_trainer_state(path: Path) -> dict:
    import torch

    try:
        return torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"{path / TRAINER_STATE}: cannot resume from this checkpoint: {e}") from None


def prune_checkpoints(folder: Path, keep: int) -> None:
    steps = sorted((p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")),
                   key=lambda p: int(p.name.split("-")[1]))
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
