"""Tiny causal LMs trained in seconds, for the tests, benchmarks and demo steps that need a model with
known behaviour (a memorised corpus, a planted dependency) rather than random weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence


def train_tiny_lm(texts: Sequence[str], tokenizer, *, preset: str = "llama-tiny", steps: int = 200,
                  lr: float = 3e-3, batch_size: int = 16, seed: int = 0, context: int = 64,
                  overrides: Optional[dict] = None):
    """A ``preset`` model trained from seed ``seed`` for ``steps`` AdamW steps on ``texts``, each encoded as
    ``BOS text EOS`` (one document per row, padding masked out of the loss). Returns the model in eval mode."""
    import torch

    from fmaudit.core.config import ModelSettings
    from fmaudit.core.model import build_config, build_model

    settings = ModelSettings(preset=preset, overrides=overrides or {})
    config = build_config(settings, len(tokenizer), context, tokenizer.bos_token_id, tokenizer.eos_token_id,
                          tokenizer.pad_token_id)
    model = build_model(config, seed=seed)
    rows = [tokenizer(t, add_special_tokens=True)["input_ids"][:context - 1] + [tokenizer.eos_token_id]
            for t in texts]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        labels[i, :len(r)] = torch.tensor(r)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        pick = torch.randint(len(rows), (min(batch_size, len(rows)),), generator=gen)
        loss = model(input_ids=ids[pick], attention_mask=(labels[pick] != -100).long(), labels=labels[pick]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def save_tiny_lm(model, tokenizer, path: str | os.PathLike) -> Path:
    """Save as a local checkpoint folder (safetensors + tokenizer) that ``load_checkpoint`` reads."""
    path = Path(path)
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return path
