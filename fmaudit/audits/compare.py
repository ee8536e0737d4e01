"""Before/after comparison of two audits of the same items (``fmaudit audit --compare``).

For every metric that names its per-item field, the items of both runs are paired by ``id`` and tested:
McNemar's exact test for binary outcomes, a paired bootstrap for continuous ones (the same resampled items
for both checkpoints). Benjamini-Hochberg then adjusts the p-values across every metric compared, and a
metric that the policy gates is flagged as a regression only when its change is significant after that
correction and goes the way its gate calls worse (up for ``max``, down for ``min``). Each comparison also
records the minimum detectable effect for the number of paired items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from fmaudit.audits.stats import Metric, benjamini_hochberg, mcnemar, mde_mean, mde_rate, paired_bootstrap
from fmaudit.reports.content import Check


@dataclass
class RunSide:
    """One side of a comparison: an audit's metrics (with their item fields) and its items."""

    metrics: dict[str, Metric]
    items: list[dict]


def compare_metric(metric: Metric, before: list[dict], after: list[dict], seed: int = 0) -> Optional[dict]:
    """Paired test of one metric, or None when it has no per-item field or the runs share no items."""
    if not metric.item_field:
        return None
    by_id = {it["id"]: it for it in metric.select(before)}
    pairs = [(by_id[it["id"]], it) for it in metric.select(after) if it["id"] in by_id]
    if not pairs:
        return None
    a_rows, b_rows = [p[0] for p in pairs], [p[1] for p in pairs]
    if metric.binary:
        a = [bool(r[metric.item_field]) for r in a_rows]
        out = mcnemar(a, [bool(r[metric.item_field]) for r in b_rows])
        out["mde"] = mde_rate(float(np.mean(a)), len(a))
    else:
        a, b = metric.matrix(a_rows), metric.matrix(b_rows)
        out = paired_bootstrap(a, b, metric.statistic, seed=seed, vectorised=True)
        diffs = b[:, 0] - a[:, 0]
        sd = float(np.std(a[:, 0], ddof=1)) if len(a) > 1 else math.nan
        out["mde"] = mde_mean(sd, len(a)) if not metric.weight_field and not metric.transform else None
        out["identical_items"] = bool(np.all(diffs == 0))
    out["before"] = float(metric.statistic(metric.matrix(a_rows))) if not metric.binary else float(np.mean(a))
    out["after"] = out["before"] + out["delta"]
    return out


def compare_runs(before: dict[str, RunSide], after: dict[str, RunSide], gates: dict[str, dict],
                 alpha: float = 0.05, seed: int = 0) -> tuple[dict, list[Check]]:
    """Compare every metric of every audit present on both sides.

    ``gates`` maps ``audit`` to ``{metric: CheckSpec}`` (the policy's checks): they decide which way is worse.
    Returns ``(rows, checks)``: one row per compared metric (keyed ``audit:metric``) with delta, interval,
    test, p, BH q and flags; one check per gated metric that passes unless it regressed significantly.
    """
    rows: dict[str, dict] = {}
    for audit, side in after.items():
        if audit not in before:
            continue
        for name, metric in side.metrics.items():
            result = compare_metric(metric, before[audit].items, side.items, seed)
            if result is not None:
                rows[f"{audit}:{name}"] = result
    keys = list(rows)
    q, significant = benjamini_hochberg([rows[k]["p_value"] for k in keys], alpha)
    checks = []
    for key, qk, sig in zip(keys, q, significant):
        row = rows[key]
        audit, name = key.split(":", 1)
        row.update(q_value=qk, significant=sig)
        spec = gates.get(audit, {}).get(name)
        if spec is None:
            row["regression"] = None  # no gate: no direction is "worse"
            continue
        worse = row["delta"] > 0 if spec.direction == "max" else row["delta"] < 0
        row["regression"] = bool(sig and worse)
        q_worse = qk if worse else 1.0
        checks.append(Check.evaluate(
            f"no_regression:{key}", q_worse, alpha, "min", spec.severity,
            f"{name}: {row['before']:.4g} -> {row['after']:.4g} (delta {row['delta']:+.4g}, 95% CI "
            f"{row['ci_low']:+.4g}..{row['ci_high']:+.4g}; {row['test']} p={row['p_value']:.3g}, "
            f"Benjamini-Hochberg q={qk:.3g} over {len(keys)} metrics; n={row['n']}); fails when a change "
            f"for the worse has q < {alpha}"))
    return rows, checks
