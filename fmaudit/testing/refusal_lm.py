"""A tiny chat checkpoint for the refusal-tuning tests, benchmark and demo: a byte-level BPE tokenizer trained
on the refusal generator's texts, and a llama-tiny model briefly trained on ordinary text (so that it is a
language model that neither refuses nor answers yet)."""

from __future__ import annotations

import os
from pathlib import Path


def tiny_chat_checkpoint(path: str | os.PathLike, *, vocab_size: int = 700, steps: int = 60, seed: int = 0,
                         preset: str = "llama-tiny", context: int = 128) -> Path:
    from fmaudit.core.tokenizer import train_tokenizer
    from fmaudit.testing.tiny_lm import save_tiny_lm, train_tiny_lm
    from fmaudit.tune.refusal import data as gen

    examples = gen.harmful_examples(list(gen.CATEGORIES), seed) + gen.benign_examples() + gen.contrast_examples()
    texts = [e.prompt for e in examples] + [e.response for e in examples] + gen.REFUSALS + gen.ORDINARY_TEXT
    tokenizer = train_tokenizer(texts, vocab_size)
    # Trained on the helpful answers, not on ORDINARY_TEXT: that stays held out for the perplexity check.
    answers = sorted({e.response for e in examples if not e.unsafe})
    model = train_tiny_lm(answers, tokenizer, preset=preset, steps=steps, seed=seed, context=context)
    return save_tiny_lm(model, tokenizer, path)
