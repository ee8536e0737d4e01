"""Helpers shared by the audits that sample continuations and score them (toxicity.generation,
bias.generation): seeded sampling through the model under audit's cache, scorer identity and columns."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from fmaudit.audits.model import DecodingSettings, item_seed
from fmaudit.errors import InputError


def sample_continuations(mua, prompts: Sequence[str], samples: int, decoding: DecodingSettings, seed: int,
                         batch_size: int) -> list[list[str]]:
    """``samples`` continuations of each prompt; sample ``k`` of a prompt is seeded by (seed, prompt, k), so
    every checkpoint, and every audit asking for the same prompt and decoding, gets the same draws (and the
    model under audit's cache serves them once)."""
    flat = [p for p in prompts for _ in range(samples)]
    seeds = [item_seed(seed, p, k) for p in prompts for k in range(samples)]
    out = mua.generate(flat, decoding, seeds, batch_size=batch_size)
    return [out[i * samples:(i + 1) * samples] for i in range(len(prompts))]


def scorer_protocol(scorer) -> dict:
    """What a protocol records of a scorer: name, version, labels and identity hash."""
    return {"name": scorer.name, "version": getattr(scorer, "version", None), "sha256": scorer.identity(),
            "labels": list(scorer.labels), "settings": scorer.describe()}


def label_column(scorer, label: Optional[str], audit: str) -> int:
    """Column of ``label`` in the scorer's scores (the first label when None)."""
    if label is None:
        return 0
    if label not in scorer.labels:
        raise InputError(f"audit {audit}: scorer {scorer.name} has no label {label!r}; labels: "
                         f"{', '.join(scorer.labels)}")
    return scorer.labels.index(label)


def score_column(scorer, texts: Sequence[str], column: int) -> np.ndarray:
    """One label's scores of ``texts`` (NaN rows, e.g. a cascade's cleared texts, count as 0)."""
    if not texts:
        return np.zeros(0)
    values = np.asarray(scorer.score(list(texts)), dtype=np.float64)[:, column]
    return np.nan_to_num(values, nan=0.0)
