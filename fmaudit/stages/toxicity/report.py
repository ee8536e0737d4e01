"""The ``toxicity`` stage's report: score histograms and plot, counts by label, threshold sensitivity,
precision/recall against ground truth, cascade agreement, and the identity-term removal-rate check.

Everything comes from the run's merged statistics, except precision/recall, which reads the stage's
side output (``OUT/toxicity_scores/``) and the ground truth (rows ``{"kind": "toxic", "id": ...}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from fmaudit.corpus import iter_json_rows
from fmaudit.reports.content import Check, ReportContext, StageReport
from fmaudit.stages.toxicity.settings import DECISIONS, SENSITIVITY
from fmaudit.stats import StageStats

NO_GROUP = "(none)"
PLOT = "toxicity_scores.png"


def build_report(stage, stats: StageStats, ctx: ReportContext) -> StageReport:

    s = stage.settings
    labels = sorted(k.split(":", 1)[1] for k in stats.histograms if k.startswith("score:"))
    c = stats.counters
    docs = c.get("docs", 0)
    decided = {d: c.get(f"decision:{d}", 0) for d in DECISIONS}
    audited = c.get("doc_audited", 0) + c.get("sentence_audited", 0)
    agree = c.get("doc_audit_agree", 0) + c.get("sentence_audit_agree", 0)
    metrics = {
        "scorer": ",".join(sorted(stats.by_prefix("scorer_ran:"))) or None,
        "docs_scored": docs,
        **{f"{d}_docs": n for d, n in decided.items()},
        "removal_rate": sum(decided.values()) / docs if docs else 0.0,
        "toxic_sentences": c.get("toxic_sentences", 0),
        "sentences_removed": c.get("sentences_removed", 0),
        "docs_split_into_sentences": c.get("docs_split", 0),
        "windows": c.get("windows", 0),
        "multi_window_texts": c.get("multi_window_texts", 0),
        "int8_rechecked_windows": c.get("rechecked_windows", 0),
        "repeated_windows": c.get("repeated_windows", 0),
    }
    checks: list[Check] = []
    if s.scorer.name == "cascade":
        scored = c.get("doc_scored", 0) + c.get("sentence_scored", 0)
        cleared = c.get("doc_cleared", 0) + c.get("sentence_cleared", 0)
        metrics["cascade_cleared_fraction"] = cleared / scored if scored else 0.0
        metrics["cascade_audited"] = audited
        metrics["cascade_agreement"] = agree / audited if audited else None
        if s.min_cascade_agreement is not None and audited:
            checks.append(Check.evaluate("cascade_agreement", round(agree / audited, 4), s.min_cascade_agreement, "min",
                                         "error", "share of audited texts cleared by the fast scorer that the full "
                                                  "scorer also finds below every threshold"))
    identity = identity_table(stats, s.min_identity_mentions, "sentence" if s.granularity == "sentence" else "document")
    if s.max_identity_removal_ratio is not None:
        for group, row in identity["groups"].items():
            if row["checked"]:
                checks.append(Check.evaluate(
                    f"identity_removal_ratio:{group}", round(row["ratio"], 4), s.max_identity_removal_ratio, "max",
                    s.identity_check_severity, f"removal rate of {identity['unit']}s mentioning {group} terms / "
                                               f"that of {identity['unit']}s mentioning no identity term (shrunk to 1 for "
                                               f"few mentions)"))
    truth = truth_metrics(ctx, stage.name)
    if truth:
        metrics.update({k: truth[k] for k in ("precision", "recall", "f1")})
        for name, bound in (("precision", s.min_precision), ("recall", s.min_recall)):
            if bound is not None and truth[name] is not None:
                checks.append(Check.evaluate(name, round(truth[name], 4), bound, "min", "error",
                                             f"document-level {name} against the ground truth's toxic documents"))
    details = {
        "scorer": s.scorer.model_dump(mode="json"),
        "thresholds": s.thresholds, "granularity": s.granularity, "action": s.action,
        "score_histograms": {label: _hist(stats, label) for label in labels},
        "by_label": {d: stats.by_prefix(f"{d}:") for d in DECISIONS},
        "threshold_sensitivity": {
            "description": "documents whose score for the label is at or above each threshold (would be removed "
                           "by that threshold alone)",
            "table": {label: {str(t): c.get(f"ge:{label}:{t}", 0) for t in SENSITIVITY} for label in labels}},
        "identity": identity,
        "truth": truth,
        # checks the stage would have run but could not judge: shown as "not checked", never silently absent
        "not_checked": [{"name": f"identity_removal_ratio:{g}", "reason": f"n = {row['units']} < {identity['min_units']} "
                                                                         f"{identity['unit']}s mention the group"}
                        for g, row in identity["groups"].items() if not row["checked"]]
                       if s.max_identity_removal_ratio is not None else [],
    }
    plots = [plot_histograms(stats, labels, s.thresholds, ctx.reports_dir / PLOT)] if labels else []
    return StageReport(metrics=metrics, checks=checks, details=details, plots=[p.name for p in plots])


def _hist(stats: StageStats, label: str) -> dict:
    h = stats.histograms[f"score:{label}"]
    return {"edges": h.edges, "counts": h.counts}


PRIOR_UNITS = 10  # pseudo-units at the baseline rate added to each group: small groups shrink towards ratio 1


def identity_table(stats: StageStats, min_units: int, unit: str) -> dict:
    """Removal rates per identity group against units (documents or sentences) mentioning no group, and
    their ratio. The group's rate is shrunk towards the baseline by ``PRIOR_UNITS`` pseudo-units, so a
    group seen a few times does not fail on noise; the baseline's rate is (removed + 0.5) / (units + 1)."""
    units, removed = stats.by_prefix("identity_units:"), stats.by_prefix("identity_removed:")
    base_n, base_r = units.get(NO_GROUP, 0), removed.get(NO_GROUP, 0)
    base_rate = (base_r + 0.5) / (base_n + 1)
    groups = {}
    for g in sorted(set(units) - {NO_GROUP}):
        n, r = units[g], removed.get(g, 0)
        shrunk = (r + PRIOR_UNITS * base_rate) / (n + PRIOR_UNITS)
        groups[g] = {"units": n, "removed": r, "removal_rate": r / n if n else 0.0, "ratio": shrunk / base_rate,
                     "checked": n >= min_units}
    return {"unit": unit, "baseline": {"units": base_n, "removed": base_r, "removal_rate": base_r / base_n if base_n else 0.0},
            "groups": groups, "estimator": f"ratio = ((removed + {PRIOR_UNITS} * b) / (units + {PRIOR_UNITS})) / b, "
                                          f"b = (baseline removed + 0.5) / (baseline units + 1)",
            "min_units": min_units}


def truth_metrics(ctx: ReportContext, stage_name: str) -> Optional[dict]:
    """Document-level precision/recall of the stage's decisions against ground-truth toxic documents."""
    if ctx.truth_path is None or not Path(ctx.truth_path).is_file():
        return None
    toxic = {r["id"] for _, r in iter_json_rows(ctx.truth_path) if r.get("kind") == "toxic"}
    seen, hit = set(), set()
    for path in sorted((Path(ctx.out_dir) / f"{stage_name}_scores").glob("*.jsonl*")):
        for _, row in iter_json_rows(path):
            seen.add(row["id"])
            if row["decision"] != "keep":
                hit.add(row["id"])
    toxic &= seen  # documents an earlier stage removed never reached this one
    tp, fp, fn = len(hit & toxic), len(hit - toxic), len(toxic - hit)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    return {"documents": len(seen), "toxic_in_truth": len(toxic), "true_positives": tp, "false_positives": fp,
            "false_negatives": fn, "precision": precision, "recall": recall, "f1": f1}


def plot_histograms(stats: StageStats, labels: list[str], thresholds: dict, path: Path) -> Path:
    """One log-scale histogram per label, with its threshold marked."""
    from fmaudit.reports.plots import Panel, plot_histograms as draw

    return draw([Panel(stats.histograms[f"score:{label}"], label, "score", thresholds.get(label)) for label in labels],
                path, dpi=80)
