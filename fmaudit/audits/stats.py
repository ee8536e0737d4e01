"""Statistics for audits: confidence intervals, paired comparisons, multiple testing, power, scorer error.

Every figure an audit reports is a :class:`Metric`: a value with a confidence interval, the number of items
it rests on and the method that gave the interval. Rates get Wilson score intervals; other statistics a
percentile bootstrap over items (seeded, so the same items give the same interval). Two checkpoints are
compared on the same items: McNemar's exact test for paired binary outcomes, a paired bootstrap for
continuous ones, and Benjamini-Hochberg across every metric compared. :func:`rogan_gladen` corrects a rate
for the measured error of the scorer that produced it and widens the interval by that uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from fmaudit.stats import Z95, wilson  # noqa: F401  (re-exported: audits use them from here)

BOOTSTRAP_ROUNDS = 2000


@dataclass
class Metric:
    """One reported figure. ``item_field`` names the per-item value it averages (``where`` selects the items,
    ``binary`` marks 0/1 outcomes), which is what a paired comparison of two checkpoints tests. With
    ``weight_field`` the figure is a ratio of sums, sum(item_field) / sum(weight_field), and ``transform``
    ("exp") is applied last: perplexity is exp(sum of negative log-likelihoods / sum of tokens)."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    method: str
    item_field: Optional[str] = None
    where: Optional[dict] = None
    binary: bool = False
    weight_field: Optional[str] = None
    transform: Optional[str] = None

    def select(self, items: Sequence[dict]) -> list[dict]:
        """The items this metric rests on."""
        where = self.where or {}
        return [it for it in items if all(it.get(k) == v for k, v in where.items())]

    def matrix(self, items: Sequence[dict]) -> np.ndarray:
        """Per selected item: its value (and weight, as a second column, for a ratio metric)."""
        fields = [self.item_field] + ([self.weight_field] if self.weight_field else [])
        rows = [[float(it[f]) for f in fields] for it in self.select(items)]
        return np.asarray(rows, dtype=float).reshape(len(rows), len(fields))

    def statistic(self, data: np.ndarray):
        """The metric's value on rows made by :meth:`matrix`; on a stack of resamples (rounds, n, columns)
        one value per resample."""
        value = (data[..., 0].sum(axis=-1) / data[..., 1].sum(axis=-1) if self.weight_field
                 else data[..., 0].mean(axis=-1))
        return np.exp(value) if self.transform == "exp" else value

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict) -> "Metric":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})


def rate(outcomes: Sequence[bool], *, item_field: Optional[str] = None, where: Optional[dict] = None) -> Metric:
    """Share of true outcomes with its Wilson interval."""
    n, k = len(outcomes), int(sum(bool(o) for o in outcomes))
    lo, hi = wilson(k, n)
    return Metric(k / n if n else math.nan, lo, hi, n, "wilson", item_field, where, True)


def bootstrap_ci(values: Sequence, statistic: Callable[[np.ndarray], float] = np.mean, *, seed: int = 0,
                 rounds: int = BOOTSTRAP_ROUNDS, level: float = 0.95, vectorised: bool = False) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the rows of ``values`` (resampled with replacement).
    ``vectorised``: the statistic takes a stack of resamples at once (see :meth:`Metric.statistic`)."""
    data = np.asarray(values, dtype=float)
    n = len(data)
    if n == 0:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, n, size=(rounds, n))
    if statistic is np.mean:
        stats = data[idx].mean(axis=1)
    elif vectorised:  # statistic maps (rounds, n, ...) to (rounds,)
        stats = np.asarray(statistic(data[idx]))
    else:
        stats = np.array([statistic(data[i]) for i in idx])
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def mean(values: Sequence[float], *, item_field: Optional[str] = None, where: Optional[dict] = None,
         seed: int = 0) -> Metric:
    """Mean with a percentile bootstrap interval."""
    data = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(data, seed=seed)
    return Metric(float(data.mean()) if len(data) else math.nan, lo, hi, len(data), "bootstrap", item_field, where)


def from_items(items: Sequence[dict], item_field: str, *, where: Optional[dict] = None, binary: bool = False,
               weight_field: Optional[str] = None, transform: Optional[str] = None, seed: int = 0) -> Metric:
    """A metric over the ``where``-selected items: a Wilson rate for a binary field, else the statistic that
    ``weight_field``/``transform`` define with a percentile bootstrap interval over items."""
    m = Metric(math.nan, math.nan, math.nan, 0, "wilson" if binary else "bootstrap", item_field, where, binary,
               weight_field, transform)
    data = m.matrix(items)
    m.n = len(data)
    if binary:
        r = rate(data[:, 0] > 0.5)
        m.value, m.ci_low, m.ci_high = r.value, r.ci_low, r.ci_high
    elif m.n:
        m.value = float(m.statistic(data))
        m.ci_low, m.ci_high = bootstrap_ci(data, m.statistic, seed=seed, vectorised=True)
    return m


def mcnemar(before: Sequence[bool], after: Sequence[bool]) -> dict:
    """McNemar's exact test on paired binary outcomes: ``b`` items went true -> false, ``c`` false -> true;
    p is the two-sided binomial probability of a split at least as uneven under no change."""
    from scipy.stats import binomtest

    a, b = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"{len(a)} outcomes before but {len(b)} after")
    lost, gained = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if lost + gained == 0 else float(binomtest(gained, lost + gained, 0.5).pvalue)
    n = len(a)
    delta = (gained - lost) / n if n else math.nan
    # Wald interval of the paired difference of proportions.
    se = math.sqrt(max(lost + gained - (gained - lost) ** 2 / n, 0.0)) / n if n else math.nan
    return {"test": "mcnemar_exact", "n": n, "b": lost, "c": gained, "delta": delta, "p_value": p,
            "ci_low": delta - Z95 * se, "ci_high": delta + Z95 * se}


def paired_bootstrap(before: Sequence, after: Sequence, statistic: Callable[[np.ndarray], float] = np.mean, *,
                     seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS, vectorised: bool = False) -> dict:
    """Paired bootstrap of ``statistic(after) - statistic(before)``: items are resampled together, so each
    checkpoint is judged on the same draw. p is twice the share of resampled deltas on the far side of 0
    (``vectorised`` as in :func:`bootstrap_ci`)."""
    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{len(a)} items before but {len(b)} after")
    n = a.shape[0]
    delta = float(np.asarray(statistic(b)) - np.asarray(statistic(a))) if n else math.nan
    if n == 0:
        return {"test": "paired_bootstrap", "n": 0, "delta": delta, "p_value": 1.0, "ci_low": math.nan,
                "ci_high": math.nan}
    idx = np.random.default_rng(seed).integers(0, n, size=(rounds, n))
    if vectorised:  # statistic maps (rounds, n, ...) to (rounds,)
        deltas = np.asarray(statistic(b[idx])) - np.asarray(statistic(a[idx]))
    else:
        deltas = np.array([statistic(b[i]) - statistic(a[i]) for i in idx])
    if np.allclose(deltas, 0.0) and abs(delta) < 1e-12:
        p = 1.0
    else:
        p = min(1.0, 2 * min(float((deltas <= 0).mean()), float((deltas >= 0).mean())))
    return {"test": "paired_bootstrap", "n": n, "delta": delta, "p_value": p,
            "ci_low": float(np.quantile(deltas, 0.025)), "ci_high": float(np.quantile(deltas, 0.975))}


def benjamini_hochberg(p_values: Sequence[float], alpha: float = 0.05) -> tuple[list[float], list[bool]]:
    """Benjamini-Hochberg adjusted p-values (q) and which hypotheses are rejected at false discovery rate ``alpha``."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return [], []
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    q = np.empty(m)
    q[order] = q_sorted
    return [float(x) for x in q], [bool(x <= alpha) for x in q]


def _z_power(alpha: float, power: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


def mde_rate(p: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest change of a rate near ``p`` that ``n`` paired items detect with that power (normal
    approximation, discordance taken as 2p(1-p): the case of independent outcomes, the least favourable)."""
    if n <= 0:
        return math.nan
    p = min(max(p, 1.0 / n), 1 - 1.0 / n) if n > 1 else 0.5
    return _z_power(alpha, power) * math.sqrt(2 * p * (1 - p) / n)


def mde_mean(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest change of a mean that ``n`` paired items with per-item standard deviation ``sd`` detect
    (difference standard deviation taken as sd * sqrt(2), i.e. uncorrelated checkpoints: the least favourable)."""
    if n <= 0:
        return math.nan
    return _z_power(alpha, power) * sd * math.sqrt(2.0 / n)


def rogan_gladen(k: int, n: int, *, tp: int, fn: int, tn: int, fp: int, seed: int = 0,
                 rounds: int = 4000) -> Metric:
    """A rate measured by an imperfect scorer, corrected for its sensitivity and specificity.

    ``k`` of ``n`` items were flagged; the scorer's calibration set gave ``tp``/``fn`` on true positives and
    ``tn``/``fp`` on true negatives. The estimate is (p + spec - 1) / (sens + spec - 1), clipped to [0, 1]. Its
    interval draws the observed rate, sensitivity and specificity from their Jeffreys posteriors, so the
    uncertainty of the calibration widens it beyond the Wilson interval of the raw rate.
    """
    if n <= 0 or tp + fn == 0 or tn + fp == 0:
        raise ValueError("Rogan-Gladen needs items and a calibration set with positives and negatives")
    sens, spec = tp / (tp + fn), tn / (tn + fp)
    if sens + spec <= 1:
        raise ValueError(f"the scorer is no better than chance on its calibration set (sensitivity {sens:.3f}, "
                         f"specificity {spec:.3f}): its rates cannot be corrected")

    def correct(p, se, sp):
        return np.clip((p + sp - 1) / (se + sp - 1), 0.0, 1.0)

    rng = np.random.default_rng(seed)
    draws = correct(rng.beta(k + 0.5, n - k + 0.5, rounds), rng.beta(tp + 0.5, fn + 0.5, rounds),
                    rng.beta(tn + 0.5, fp + 0.5, rounds))
    value = float(correct(k / n, sens, spec))
    return Metric(value, float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975)), n, "rogan_gladen")
