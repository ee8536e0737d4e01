"""GPT-style causal LMs from a transformers config, with seeded random initialisation."""

from __future__ import annotations

from typing import Any, Optional

from fmaudit.core.config import PRESETS, ModelSettings
from fmaudit.errors import PolicyError


class ConfigFieldError(PolicyError):
    """A ``train.model`` setting that transformers refuses; ``loc`` is its path in the policy."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(f"{'.'.join(map(str, loc))}: {message}")
        self.loc, self.message = loc, message


OVERRIDES = ("train", "model", "overrides")


def build_config(model: ModelSettings, vocab_size: int, seq_len: int, bos_token_id: Optional[int] = None,
                 eos_token_id: Optional[int] = None, pad_token_id: Optional[int] = None):
    """The transformers config of a preset, sized for a tokenizer and sequence length, with overrides applied.

    The config is validated as transformers validates it (architecture, ``rope_parameters``: its warnings are
    errors here) and a model is built from it on the meta device (no weights), so an override that cannot
    make a model raises :class:`ConfigFieldError` naming it, at ``fmaudit policy check`` time."""
    from transformers import GPT2Config, LlamaConfig

    arch, fields = PRESETS[model.preset]
    specials = dict(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    if arch == "llama":
        base = dict(vocab_size=vocab_size, max_position_embeddings=seq_len, tie_word_embeddings=False,
                    attention_bias=False, mlp_bias=False, rms_norm_eps=1e-5, initializer_range=0.02, **specials)
        cls = LlamaConfig
    else:
        base = dict(vocab_size=vocab_size, n_positions=seq_len, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                    **specials)
        cls = GPT2Config
    known = cls()
    for key in model.overrides:
        if not hasattr(known, key):
            raise ConfigFieldError(OVERRIDES + (key,), f"not a field of {cls.__name__}")
    config = _construct(cls, {**base, **fields}, model.overrides)
    from fmaudit.core.sizing import estimate_parameters

    try:
        estimate_parameters(config)
    except Exception as e:  # transformers and torch raise many types for a config that cannot make a model
        key = next(iter(model.overrides), None)
        loc = OVERRIDES + ((key,) if len(model.overrides) == 1 else ())
        raise ConfigFieldError(loc, f"no {cls.__name__} model can be built from it: {_first_line(e)}") from None
    return config


def _construct(cls, base: dict, overrides: dict):
    """``cls(**base, **overrides)``, naming the override transformers refuses (or warns about, for rope)."""
    import logging

    class Collect(logging.Handler):
        def emit(self, record):
            warned.append(record.getMessage().removeprefix("[transformers] "))

    warned: list[str] = []
    logger = logging.getLogger("transformers.modeling_rope_utils")  # rope validation only warns: collect it
    handler, propagate = Collect(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for key in overrides:  # one at a time first, so the message names the field at fault
            try:
                cls(**{**base, key: overrides[key]})
            except Exception as e:
                raise ConfigFieldError(OVERRIDES + (key,), _first_line(e)) from None
            if warned:
                raise ConfigFieldError(OVERRIDES + (key,), warned[0])
        try:
            return cls(**{**base, **overrides})
        except Exception as e:
            raise ConfigFieldError(OVERRIDES, _first_line(e)) from None
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _first_line(e: Exception) -> str:
    """The useful line of a (possibly multi-line, validator-wrapped) exception message."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


def build_model(config, seed: int = 0, device: Any = None):
    """A randomly initialised causal LM for ``config``; the same seed gives the same weights. A model whose fp32
    weights alone would not fit in the free memory is refused (InputError) from its config, before building."""
    import torch
    from transformers import AutoModelForCausalLM

    from fmaudit.core.sizing import available_memory, estimate_parameters, human
    from fmaudit.errors import InputError

    params = estimate_parameters(config)
    free = available_memory(device if device is not None and torch.device(device).type == "cuda" else None)
    if 4 * params > 0.9 * free:
        raise InputError(f"the model has {params:,} parameters ({human(4 * params, 'B')} of fp32 weights), more "
                         f"than the memory free ({human(free, 'B')}); refused before building it")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    return model.to(device) if device is not None else model

