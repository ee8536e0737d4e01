"""GPT-style causal LMs from a transformers config, with seeded random initialisation."""

from __future__ import annotations

from typing import Any, Optional

from fmaudit.core.config import PRESETS, ModelSettings
from fmaudit.errors import PolicyError


def build_config(model: ModelSettings, vocab_size: int, seq_len: int, bos_token_id: Optional[int] = None,
                 eos_token_id: Optional[int] = None, pad_token_id: Optional[int] = None):
    """The transformers config of a preset, sized for a tokenizer and sequence length, with overrides applied."""
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
    config = cls(**{**base, **fields})
    for key, value in model.overrides.items():
        if not hasattr(config, key):
            raise PolicyError(f"train.model.overrides.{key}: not a field of {cls.__name__}")
        setattr(config, key, value)
    return config


def build_model(config, seed: int = 0, device: Any = None):
    """A randomly initialised causal LM for ``config``; the same seed gives the same weights."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    return model.to(device) if device is not None else model

