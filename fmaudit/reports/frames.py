"""Reports as pandas DataFrames, for compliance reviewers in notebooks.

    >>> from fmaudit import reports
    >>> r = reports.load("out/reports")
    >>> r.checks[~r.checks.passed]
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from fmaudit.reports.envelope import read_reports


INTERVAL_COLUMNS = ("ci_low", "ci_high", "n", "method")


@dataclass
class ReportFrames:
    """``checks``: one row per check; ``metrics``: one row per metric; ``counts``: one row per data-stage
    report (the only kind that counts documents); ``reports``: the raw envelopes, by name. Every row carries
    the report's ``kind`` (data_stage, training, model_stage, audit); an audit's metric rows also carry its
    95% interval, item count and interval method (``ci_low``, ``ci_high``, ``n``, ``method``)."""

    checks: pd.DataFrame
    metrics: pd.DataFrame
    counts: pd.DataFrame
    reports: dict


def load(reports_dir: str | os.PathLike) -> ReportFrames:
    """Load every report envelope in ``reports_dir`` into DataFrames."""
    envelopes = read_reports(reports_dir)
    if not envelopes:
        raise FileNotFoundError(f"{reports_dir}: no fmaudit reports found")
    check_rows, metric_rows, count_rows = [], [], []
    for r in envelopes:
        base = {"stage": r["stage"], "kind": r["kind"], "run_id": r["run_id"]}
        for c in r["checks"]:
            check_rows.append({**base, **{k: c.get(k) for k in
                                          ("name", "value", "threshold", "direction", "passed", "severity")}})
        intervals = r.get("details", {}).get("intervals", {})  # audits: each metric's 95% interval
        for name, value in r["metrics"].items():
            ci = intervals.get(name, {})
            metric_rows.append({**base, "name": name, "value": value,
                                **{k: ci.get(k) for k in INTERVAL_COLUMNS}})
        counts = r.get("counts")
        if counts is None:
            continue
        count_rows.append({
            **base,
            "in": counts.get("in", 0),
            "kept": counts.get("kept", 0),
            "dropped": sum(counts.get("dropped", {}).values()),
            "held": sum(counts.get("held", {}).values()),
            "quarantined": counts.get("quarantined", 0),
            "added": counts.get("added", 0),
            **{f"dropped:{k}": v for k, v in counts.get("dropped", {}).items()},
        })
    checks = pd.DataFrame(check_rows, columns=["stage", "kind", "run_id", "name", "value", "threshold", "direction",
                                               "passed", "severity"])
    checks["passed"] = checks["passed"].astype(bool)
    metrics = pd.DataFrame(metric_rows, columns=["stage", "kind", "run_id", "name", "value", *INTERVAL_COLUMNS])
    counts = pd.DataFrame(count_rows).fillna(0)
    return ReportFrames(checks, metrics, counts, {r["stage"]: r for r in envelopes})
