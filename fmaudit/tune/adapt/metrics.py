"""Disaggregated metrics of a binary classifier: per group (fairlearn ``MetricFrame``), disparities between
groups, and bootstrap confidence intervals.

Groups are intersectional when there are several sensitive features (``female & 18-34``); the marginal groups
of each feature are reported too. A disparity is the largest minus the smallest group rate, as fairlearn's
``demographic_parity_difference`` and ``equalized_odds_difference`` compute it. Confidence intervals resample
the test rows (``n_boot`` times, seeded) and recompute every figure from per-group counts with numpy, which
gives the same point values as MetricFrame at a fraction of the cost of a bootstrapped MetricFrame. A
largest-minus-smallest figure is biased upward under resampling (noise widens the spread), so its interval can
lie above the point estimate when groups are small.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

CI = (0.025, 0.975)  # a 95% percentile interval
RATES = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate", "error_rate")
DISPARITIES = {
    "demographic_parity_difference": ("selection_rate",),
    "true_positive_rate_difference": ("true_positive_rate",),
    "false_positive_rate_difference": ("false_positive_rate",),
    "equalized_odds_difference": ("true_positive_rate", "false_positive_rate"),
    "error_rate_difference": ("error_rate",),
}


def _counts(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Per-group counts, for any leading batch shape: ``codes`` etc. of shape (..., n)."""
    lead = codes.shape[:-1]
    flat = (codes + n_groups * np.arange(int(np.prod(lead, dtype=int))).reshape(lead + (1,))).ravel()
    size = n_groups * int(np.prod(lead, dtype=int))

    def count(w=None):
        return np.bincount(flat, weights=None if w is None else w.ravel(), minlength=size).reshape(lead + (n_groups,))

    return {"n": count(), "correct": count((y == p).astype(float)), "selected": count(p.astype(float)),
            "positives": count(y.astype(float)), "tp": count((y * p).astype(float)),
            "fp": count(((1 - y) * p).astype(float))}


def _rates(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = c["correct"] / c["n"]
        return {"accuracy": acc, "selection_rate": c["selected"] / c["n"],
                "true_positive_rate": c["tp"] / c["positives"],
                "false_positive_rate": c["fp"] / (c["n"] - c["positives"]), "error_rate": 1 - acc}


def _disparities(r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (a group missing from a resample)
        spread = {k: np.nanmax(v, -1) - np.nanmin(v, -1) for k, v in r.items()}
    return {name: np.max([spread[k] for k in keys], axis=0) for name, keys in DISPARITIES.items()}


def _interval(samples: np.ndarray) -> Optional[list[float]]:
    samples = samples[np.isfinite(samples)]
    return [float(np.quantile(samples, q)) for q in CI] if samples.size else None


def summary(y: np.ndarray, p: np.ndarray, groups: np.ndarray, n_boot: int = 200, seed: int = 0) -> dict:
    """Accuracy, selection rate and every disparity over ``groups`` (one name per row), each with a 95%
    bootstrap interval: ``{"accuracy": x, "accuracy_ci": [lo, hi], "disparities": {...}, "disparities_ci":
    {...}}``."""
    y, p = np.asarray(y, dtype=np.int64), np.asarray(p, dtype=np.int64)
    names, codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    point = _disparities(_rates(_counts(y, p, codes, len(names))))
    out = {"accuracy": float(np.mean(y == p)), "selection_rate": float(np.mean(p)),
           "disparities": {k: float(v) for k, v in point.items()}}
    if n_boot:
        idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))
        boot = _disparities(_rates(_counts(y[idx], p[idx], codes[idx], len(names))))
        out["accuracy_ci"] = _interval(np.mean(y[idx] == p[idx], axis=1))
        out["disparities_ci"] = {k: _interval(v) for k, v in boot.items()}
    return out


def by_group(y: np.ndarray, p: np.ndarray, sensitive, n_boot: int = 200, seed: int = 0) -> list[dict]:
    """Per-group rows from fairlearn's MetricFrame (accuracy, selection rate, TPR, FPR, count) over the
    intersectional groups of ``sensitive`` (a DataFrame), with bootstrap intervals of each rate."""
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    from fmaudit.tune.adapt.task import intersect

    y, p = np.asarray(y, dtype=np.int64), np.asarray(p, dtype=np.int64)
    frame = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate,
                                 "true_positive_rate": _nan_if_empty(true_positive_rate, 1),
                                 "false_positive_rate": _nan_if_empty(false_positive_rate, 0), "count": count},
                        y_true=y, y_pred=p, sensitive_features=sensitive)
    names, codes = np.unique(intersect(sensitive).astype(str), return_inverse=True)
    counts = _counts(y, p, codes, len(names))
    boot = None
    if n_boot:
        idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))
        boot = _rates(_counts(y[idx], p[idx], codes[idx], len(names)))
    rows = []
    table = frame.by_group
    for key, values in table.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        name = " & ".join(map(str, key))
        g = int(np.flatnonzero(names == name)[0])
        row = {"group": name, **{c: str(v) for c, v in zip(sensitive.columns, key)},
               "count": int(values["count"]), "positives": int(counts["positives"][g])}
        for m in ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"):
            v = float(values[m])
            row[m] = v if np.isfinite(v) else None
            if boot is not None:
                row[f"{m}_ci"] = _interval(boot[m][:, g])
        rows.append(row)
    return rows


def _nan_if_empty(metric, label: int):
    """TPR/FPR of a group with no positive (negative) rows is undefined: NaN, not sklearn's warning and 0."""
    def wrapped(y_true, y_pred):
        return metric(y_true, y_pred) if np.any(np.asarray(y_true) == label) else float("nan")

    wrapped.__name__ = metric.__name__
    return wrapped


def small_groups(rows: list[dict], min_size: int) -> list[str]:
    """Warnings for groups whose figures are too noisy to judge: fewer than ``min_size`` test rows, or no
    positive or no negative row (TPR or FPR undefined)."""
    out = []
    for r in rows:
        if r["count"] < min_size:
            out.append(f"group {r['group']!r}: {r['count']} test rows (< {min_size}): too few to judge its rates")
        elif r["positives"] in (0, r["count"]):
            which = "positive" if r["positives"] == 0 else "negative"
            out.append(f"group {r['group']!r}: no {which} row in the test split: its "
                       f"{'TPR' if which == 'positive' else 'FPR'} is undefined")
    return out
