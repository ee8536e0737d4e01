"""Reports as pandas DataFrames, for compliance reviewers in notebooks.

    >>> from fmaudit import reports
    >>> r = reports.load("reports/demo")          # any run, job, audit or demo folder
    >>> r.checks[~r.checks.passed]                  # failed checks, with description, CI, plot and samples
    >>> r.metrics.pivot_table(index="name", columns="stage", values="value")
    >>> r.missed("pii")                             # documents behind a failed PII recall check
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from fmaudit.reports.collect import collect

COUNT_COLUMNS = ["in", "kept", "dropped", "held", "quarantined", "added"]
INTERVAL_COLUMNS = ("ci_low", "ci_high", "n", "method")


@dataclass
class ReportFrames:
    """``checks``: one row per check (failed first); ``metrics``: one row per metric (``value`` numeric,
    ``value_text`` for the rest); ``counts``: one row per data-stage report, the same columns for every
    stage; ``runs``: one row per report with parsed timestamps; ``inputs``: the input files with sha256;
    ``reports``: the raw envelopes, by name (``folder:name`` where a name occurs in several folders). Every row
    carries the report's ``kind``; an audit's metric rows also carry its 95% interval, item count and interval
    method (``ci_low``, ``ci_high``, ``n``, ``method``)."""

    checks: pd.DataFrame
    metrics: pd.DataFrame
    counts: pd.DataFrame
    runs: pd.DataFrame
    inputs: pd.DataFrame
    reports: dict

    def report(self, stage: str) -> dict:
        """The envelope of the (first) report named ``stage``."""
        for r in self.reports.values():
            if r["stage"] == stage:
                return r
        raise KeyError(f"no report named {stage!r}; reports: {', '.join(sorted({r['stage'] for r in self.reports.values()}))}")

    def missed(self, stage: str = "pii") -> pd.DataFrame:
        """The ground-truth items a stage did not catch (document id, type, offsets; never the value): the
        evidence behind a failed recall check."""
        truth = self.report(stage).get("details", {}).get("truth") or {}
        return pd.DataFrame(truth.get("missed") or [], columns=["id", "entity_type", "start", "end"])


def _number(value):
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else float("nan")


def load(path: str | os.PathLike) -> ReportFrames:
    """Load every report envelope at or below ``path`` (a run, job, audit or demo folder, or a reports folder)."""
    ev = collect([path])
    check_rows, metric_rows, count_rows, run_rows = [], [], [], []
    for s in ev.sections:
        r = s.report
        base = {"stage": s.name, "kind": s.kind, "folder": s.folder, "run_id": r["run_id"]}
        samples = [smp for smp in r.get("samples", [])]
        for c in r["checks"]:
            ci = c.get("ci") or [None, None]
            check_rows.append({**base, **{k: c.get(k) for k in ("name", "value", "threshold", "direction", "passed",
                                                                 "severity", "description")},
                               "ci_low": ci[0], "ci_high": ci[1],
                               "plot": s.plots[0][0] if s.plots else None, "samples": samples})
        intervals = r.get("details", {}).get("intervals", {})  # audits: each metric's 95% interval
        for name, value in r["metrics"].items():
            ci = intervals.get(name, {})
            metric_rows.append({**base, "name": name, "value": _number(value),
                                "value_text": None if isinstance(value, (int, float)) else value,
                                **{k: ci.get(k) for k in INTERVAL_COLUMNS}})
        counts = r.get("counts")
        if counts is not None:
            dropped, held = counts.get("dropped", {}), counts.get("held", {})
            count_rows.append({**base, "in": counts.get("in", 0), "kept": counts.get("kept", 0),
                               "dropped": sum(dropped.values()), "held": sum(held.values()),
                               "quarantined": counts.get("quarantined", 0), "added": counts.get("added", 0),
                               **{f"dropped:{k}": v for k, v in dropped.items()},
                               **{f"held:{k}": v for k, v in held.items()}})
        run_rows.append({**base, "started_at": r["started_at"], "ended_at": r["ended_at"],
                         "wall_s": r.get("timings", {}).get("wall_s"), "policy": (r.get("policy") or {}).get("name"),
                         "policy_sha256": (r.get("policy") or {}).get("sha256")})
    base_cols = ["stage", "kind", "folder", "run_id"]
    checks = pd.DataFrame(check_rows, columns=base_cols + ["name", "value", "threshold", "direction", "passed", "severity",
                                                           "description", "ci_low", "ci_high", "plot", "samples"])
    checks["passed"] = checks["passed"].astype(bool)
    checks = checks.sort_values("passed", kind="stable").reset_index(drop=True)
    metrics = pd.DataFrame(metric_rows, columns=base_cols + ["name", "value", "value_text", *INTERVAL_COLUMNS])
    metrics["value"] = metrics["value"].astype(float)
    counts = pd.DataFrame(count_rows)
    extra = sorted(c for c in counts.columns if ":" in c) if len(counts) else []
    counts = counts.reindex(columns=base_cols + COUNT_COLUMNS + extra).fillna({c: 0 for c in COUNT_COLUMNS + extra})
    for c in COUNT_COLUMNS + extra:
        counts[c] = counts[c].astype(int)
    runs = pd.DataFrame(run_rows, columns=base_cols + ["started_at", "ended_at", "wall_s", "policy", "policy_sha256"])
    for c in ("started_at", "ended_at"):
        runs[c] = pd.to_datetime(runs[c], utc=True)
    inputs = pd.DataFrame(ev.inputs, columns=["name", "sha256", "bytes", "used_by"])
    names = [s.name for s in ev.sections]
    by_name = {(s.name if names.count(s.name) == 1 else f"{s.folder}:{s.name}"): s.report for s in ev.sections}
    return ReportFrames(checks, metrics, counts, runs, inputs, by_name)
