"""Model choice: the accuracy-disparity front and the most accurate model within the policy's bound."""

from __future__ import annotations

from typing import Optional


def pareto_front(models: dict[str, dict], metric: str) -> list[str]:
    """Names of the models no other model beats on both accuracy (higher) and ``metric`` (lower), ordered by
    disparity."""
    pts = {n: (m["accuracy"], m["disparities"][metric]) for n, m in models.items()}
    front = [n for n, (acc, dis) in pts.items()
             if not any((a >= acc and d <= dis) and (a > acc or d < dis) for a, d in pts.values())]
    return sorted(front, key=lambda n: (pts[n][1], -pts[n][0], n))


def choose(models: dict[str, dict], metric: str, bound: float) -> Optional[str]:
    """The most accurate model whose ``metric`` is at most ``bound`` (ties: lower disparity, then name); None
    when no model qualifies."""
    ok = [n for n, m in models.items() if m["disparities"][metric] <= bound]
    if not ok:
        return None
    return min(ok, key=lambda n: (-models[n]["accuracy"], models[n]["disparities"][metric], n))
