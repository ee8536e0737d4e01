"""The ``pii.json`` report: counts per entity type and operator, density histogram and plot, and,
with a ground-truth file, recall and precision (see :mod:`fmaudit.pii.evaluate`)."""

from __future__ import annotations

from fmaudit.stages.pii.settings import PiiSettings
from fmaudit.stages.base import Check, ReportContext, StageReport
from fmaudit.stats import Histogram, StageStats

DENSITY_PLOT = "pii_density.png"


def counts_table(stats: StageStats) -> dict[str, dict]:
    """{entity type: {"found", "documents", "operators": {operator: n}}}."""
    table: dict[str, dict] = {}
    for t, n in stats.by_prefix("found:").items():
        table[t] = {"found": n, "documents": stats.counters.get(f"docs_with:{t}", 0), "operators": {}}
    for key, n in stats.by_prefix("operator:").items():
        t, op = key.split(":", 1)
        table.setdefault(t, {"found": 0, "documents": 0, "operators": {}})["operators"][op] = n
    return table


def plot_density(hist: Histogram, path) -> None:
    from fmaudit.reports.plots import Panel, plot_histograms

    plot_histograms([Panel(hist, "PII density per document",
                           "fraction of characters inside PII spans (last bin: and above)")],
                    path, yscale="symlog", panel_size=(6, 3.2), dpi=100)


def build_report(settings: PiiSettings, stats: StageStats, ctx: ReportContext) -> StageReport:
    n_in = stats.counters.get("in", 0)
    touched = stats.counters.get("docs_touched", 0)
    chars = stats.counters.get("chars", 0)
    table = counts_table(stats)
    skipped = stats.counters.get("ledger_skipped_docs", 0)
    metrics = {
        "entities_found": sum(v["found"] for v in table.values()),
        "docs_touched": touched,
        "docs_touched_fraction": touched / n_in if n_in else 0.0,
        "pii_char_fraction": stats.counters.get("pii_chars", 0) / chars if chars else 0.0,
        "ledger_written": skipped == 0 and settings.ledger != "off",
    }
    for t, v in table.items():
        metrics[f"found_{t}"] = v["found"]
    details: dict = {"by_entity_type": table, "entities": settings.all_entities(),
                     "operators": {t: settings.operator_for(t).operator for t in settings.all_entities()}}
    checks: list[Check] = []
    if settings.ledger == "auto" and skipped:
        checks.append(Check.evaluate("ledger_written", False, True, "equal", "warning",
                                     f"no key in ${settings.key_env} or key_file: the salted-hash ledger was not written"))
    plots = []
    hist = stats.histograms.get("pii_density")
    if hist is not None and sum(hist.counts):
        plot_density(hist, ctx.reports_dir / DENSITY_PLOT)
        plots.append(DENSITY_PLOT)
    if ctx.truth_path is not None and settings.ledger != "off" and not skipped:
        from fmaudit.pii.evaluate import evaluate
        from fmaudit.pii.keys import load_key

        ev = evaluate(ctx.truth_path, ctx.out_dir, load_key(settings.key_env, settings.key_file, settings.demo_key))
        details["truth"] = ev
        metrics["recall"] = ev["recall"]
        for t, v in ev["recall_by_type"].items():
            metrics[f"recall_{t}"] = v["recall"]
        if settings.min_recall is not None and ev["recall"] is not None:
            checks.append(Check.evaluate("recall", ev["recall"], settings.min_recall, "min", "error",
                                         "share of injected PII strings anonymized (ground truth)"))
    return StageReport(metrics=metrics, checks=checks, details=details, plots=plots)
