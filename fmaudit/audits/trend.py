"""Monitoring across training: each audit metric of every checkpoint of a run, as a table and plots.

``reports/trend.json`` (kind "audit") lists, per audit and metric, the value and 95% interval at every step,
and each step's check results; ``reports/trend_<audit>.png`` draws the audit's headline metrics (those
without a per-group suffix) against the training step, with their intervals as bands.
"""

from __future__ import annotations

import math
from pathlib import Path

MAX_PANELS = 6


def write_trend(per_step: dict[int, list[dict]], reports_dir: Path, policy, run_id: str) -> Path:
    """``per_step``: the audit report envelopes of each checkpoint, by training step."""
    from fmaudit.reports import make_report, now_iso, write_report

    started = now_iso()
    steps = sorted(per_step)
    series: dict[str, dict[str, list]] = {}
    for step in steps:
        for report in per_step[step]:
            for name, m in report["details"].get("intervals", {}).items():
                series.setdefault(report["stage"], {}).setdefault(name, []).append(
                    {"step": step, **{k: m.get(k) for k in ("value", "ci_low", "ci_high", "n")}})
    checks = {step: {f"{r['stage']}:{c['name']}": c["passed"] for r in per_step[step] for c in r["checks"]}
              for step in steps}
    plots = [plot_trend(audit, metrics, reports_dir / f"trend_{audit}.png").name for audit, metrics in series.items()]
    last = per_step[steps[-1]]
    report = make_report("trend", run_id, started, kind="audit", policy=policy,
                         metrics={f"{r['stage']}:{k}": v for r in last for k, v in r["metrics"].items()},
                         details={"steps": steps, "series": series, "checks_by_step": checks}, plots=plots)
    return write_report(reports_dir, report)


def plot_trend(audit: str, metrics: dict[str, list], path: Path, dpi: int = 90) -> Path:
    """One panel per headline metric of ``audit``: value against step, interval as a band."""
    from matplotlib.figure import Figure

    names = [n for n in metrics if "." not in n][:MAX_PANELS] or list(metrics)[:MAX_PANELS]
    fig = Figure(figsize=(3.2 * len(names), 2.8))
    for k, name in enumerate(names):
        points = metrics[name]
        ax = fig.add_subplot(1, len(names), k + 1)
        xs = [p["step"] for p in points]
        ax.plot(xs, [_num(p["value"]) for p in points], marker="o", color="#4c72b0")
        ax.fill_between(xs, [_num(p["ci_low"]) for p in points], [_num(p["ci_high"]) for p in points],
                        color="#4c72b0", alpha=0.2)
        ax.set_title(f"{audit}: {name}", fontsize=9)
        ax.set_xlabel("training step", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _num(x) -> float:
    return math.nan if x is None else float(x)
