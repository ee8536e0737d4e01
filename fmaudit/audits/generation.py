"""Helpers shared by the audits that sample continuations and score them (toxicity.generation,
bias.generation): seeded sampling through the model under audit's cache, scorer identity and columns."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from fmaudit.audits.base import require_unchanged
from fmaudit.audits.model import DecodingSettings, item_seed
from fmaudit.corpus import sha256_file
from fmaudit.errors import InputError, UsageError


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


# --- re-scoring saved continuations (``fmaudit audit --rescore``) ---

GENERATED = "the saved outputs were generated under the saved value"


def generated_by(data_sha256: Optional[str], prompts: int, samples: int, decoding: DecodingSettings,
                 seed: int) -> dict:
    """The protocol fields that decide what a generation audit generated, as its policy now gives them: a
    re-score must find them unchanged (:func:`fmaudit.audits.base.require_unchanged`)."""
    return {"data_sha256": data_sha256, "items": prompts, "samples_per_item": samples,
            "decoding": decoding.model_dump(), "seed": seed}


def prompts_as_generated(audit, protocol: dict, samples: int) -> tuple:
    """The audit's prompts ``(path, rows)``, once the saved ``protocol`` is found to have generated its outputs
    as the policy now asks (same prompt file and count, samples, decoding, seed); UsageError naming what changed."""
    s = audit.settings
    if not hasattr(audit, "prompts"):
        audit.preflight()
    path, rows = audit.prompts
    require_unchanged(audit.name, protocol, generated_by(sha256_file(path), len(rows), samples, s.decoding, s.seed),
                      GENERATED)
    return path, rows


def rescored_scores(scorer, column: int, saved_scorer: Optional[dict], saved_label: Optional[str],
                    saved: Sequence[Sequence[float]], texts: Sequence[Sequence[str]], audit: str,
                    prompts: Optional[Sequence[str]] = None) -> tuple[list[np.ndarray], bool]:
    """Per-item scores of saved outputs, and whether they were scored anew: the ``saved`` scores when
    ``scorer`` (identity and label) is the one that produced them, else ``scorer``'s scores of the saved
    ``texts`` (the anonymized outputs of ``items/``; the raw ones are never stored). ``prompts``, one per
    item, go to scorers that judge a response in context."""
    same = (saved_scorer or {}).get("sha256") == scorer.identity() and saved_label == scorer.labels[column]
    if same:
        return [np.asarray(s, dtype=np.float64) for s in saved], False
    flat = [t for ts in texts for t in ts]
    if any(t is None or t.startswith("sha256:") for t in flat):
        raise UsageError(f"audit {audit}: its items keep only hashes of the outputs (item_text: hash; or no outputs: "
                         f"written by an older fmaudit), so a new scorer ({scorer.name}) has nothing to score; run "
                         f"the audit again with item_text: scrubbed")
    context = None if prompts is None else [p for p, ts in zip(prompts, texts) for _ in ts]
    if context is None:
        values = score_column(scorer, flat, column)
    else:
        values = np.nan_to_num(np.asarray(scorer.score(flat, prompts=context), dtype=np.float64)[:, column])
    out, start = [], 0
    for ts in texts:
        out.append(np.round(values[start:start + len(ts)], 6))
        start += len(ts)
    return out, True
