"""Secret-sharer exposure (Carlini et al., 2019) of canaries planted in the training data.

The log-perplexity of a text is ``-log2 p(text)`` under the model. For a canary with secret ``s`` drawn
from a candidate space ``R`` (every secret of the canary's format),

    exposure(s) = log2 |R| - log2 rank(s)

where ``rank(s)`` is 1 + the number of other candidates whose log-perplexity is lower. A memorised canary
ranks first (exposure = log2 |R|); one the model never saw has an expected exposure of about 1 bit.

- **by rank**: every candidate is scored when ``|R|`` is at most ``enumerate_limit``, else a uniform sample
  of candidates estimates the share ``q`` ranked above the canary (``rank = 1 + q (|R| - 1)``); the Wilson
  interval of ``q`` gives the interval of the exposure (exact, zero width, when enumerated);
- **by the skew-normal fit**: a skew-normal distribution fitted to the candidates' log-perplexities gives
  ``exposure = -log2 CDF(canary's log-perplexity)``, which reaches beyond the ``log2`` of the sample size;
  its interval comes from refits on bootstrap resamples of the candidates.

One set of candidates serves every canary of a format: their distribution does not depend on the canary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fmaudit.audits.stats import wilson

LN2 = math.log(2.0)


@dataclass
class CandidateSet:
    """Log-perplexities (bits) of candidate secrets: all of them (``enumerated``) or a uniform sample."""

    logppl: np.ndarray
    space_size: int
    enumerated: bool


def candidate_secrets(settings, limit: int, rng: np.random.Generator) -> tuple[list[str], bool]:
    """Every secret of ``settings``' space when it has at most ``limit`` secrets, else ``limit`` drawn
    uniformly (with replacement). Returns the secrets and whether they are the whole space."""
    k, n = len(settings.alphabet), settings.length
    if settings.space_size <= limit:
        idx = np.indices((k,) * n).reshape(n, -1).T
        return [settings.secret_text(row) for row in idx], True
    return [settings.secret_text(row) for row in settings.random_secrets(rng, limit)], False


def score_candidates(settings, logprob: Callable[[Sequence[str]], np.ndarray], limit: int, seed: int) -> CandidateSet:
    """Log-perplexities of the candidate canaries of ``settings`` (``logprob``: texts -> natural log-probs)."""
    secrets, enumerated = candidate_secrets(settings, limit, np.random.default_rng([seed, 0xCA7]))
    lp = np.asarray(logprob([settings.text(s) for s in secrets]), dtype=np.float64)
    return CandidateSet(-lp / LN2, settings.space_size, enumerated)


def exposure_by_rank(canary_logppl: float, candidates: CandidateSet, canary_secret_in_set: bool = True) -> dict:
    """Rank and exposure of a canary among the candidates, with the interval of a sampled rank.

    Ties count half. When enumerated, the canary itself is among the candidates (``canary_secret_in_set``)
    and is not counted against itself (its log-perplexity equals the canary's: it would count as a tie)."""
    below = float((candidates.logppl < canary_logppl).sum() + 0.5 * (candidates.logppl == canary_logppl).sum())
    log2_space = math.log2(candidates.space_size)
    if candidates.enumerated:
        if canary_secret_in_set:
            below -= 0.5
        rank = 1.0 + below
        value = log2_space - math.log2(rank)
        return {"rank": rank, "exposure": value, "low": value, "high": value}
    n = len(candidates.logppl)
    q = below / n
    q_lo, q_hi = wilson(below, n)
    others = candidates.space_size - 1

    def exposure(share: float) -> float:
        return log2_space - math.log2(1.0 + share * others)

    return {"rank": 1.0 + q * others, "exposure": exposure(q), "low": exposure(q_hi), "high": exposure(q_lo)}


class SkewNormalFit:
    """A skew-normal fit (scipy.stats.skewnorm) of candidate log-perplexities, and bootstrap refits."""

    def __init__(self, logppl: np.ndarray, bootstrap: int, seed: int, max_points: int = 4000):
        from scipy import stats

        self._dist = stats.skewnorm
        rng = np.random.default_rng([seed, 0x5CE])
        x = np.asarray(logppl, dtype=np.float64)
        if len(x) > max_points:  # the fit's cost grows with the points; a few thousand pin down 3 parameters
            x = rng.choice(x, max_points, replace=False)
        self.params = self._dist.fit(x)
        self.boot = [self._dist.fit(rng.choice(x, len(x), replace=True)) for _ in range(bootstrap)]

    def exposure(self, canary_logppl: float) -> dict:
        """-log2 CDF of the canary's log-perplexity, with the 95% percentile interval of the refits."""
        value = -float(self._dist.logcdf(canary_logppl, *self.params)) / LN2
        reps = [-float(self._dist.logcdf(canary_logppl, *p)) / LN2 for p in self.boot]
        low, high = (float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))) if reps else (value, value)
        return {"exposure": value, "low": min(low, value), "high": max(high, value)}

    def describe(self) -> dict:
        a, loc, scale = (float(v) for v in self.params)
        return {"shape": a, "loc": loc, "scale": scale, "bootstrap_refits": len(self.boot)}


def group_interval(values: Sequence[float], lows: Sequence[float], highs: Sequence[float], seed: int,
                   resamples: int = 1000) -> tuple[float, float, float]:
    """Mean of per-canary exposures of one repetition count, with an interval that holds both the
    per-canary estimation intervals (averaged) and, with several canaries, the bootstrap over canaries."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    low, high = float(np.mean(lows)), float(np.mean(highs))
    if len(v) > 1:
        rng = np.random.default_rng([seed, len(v)])
        means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
        low, high = min(low, float(np.percentile(means, 2.5))), max(high, float(np.percentile(means, 97.5)))
    return mean, min(low, mean), max(high, mean)
