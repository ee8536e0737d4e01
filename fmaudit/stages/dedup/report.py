"""The report of a dedup stage: its ``<stage>.json`` envelope, and its section of ``reports/dedup.json``.

``dedup.json`` gathers every dedup stage of the run: duplicate rate overall and per source
(``meta.source``), the cluster-size histogram, the similarity distribution of the removed documents to the
copies kept, anonymized sample pairs, and for near duplicates the LSH settings with their false-positive
and false-negative areas (datasketch's measures) against the false-positive rate measured by exact Jaccard
on the candidate pairs the global step verified.
"""

from __future__ import annotations

import json
from collections import Counter

from fmaudit.corpus import iter_json_rows, write_json_atomic
from fmaudit.stages.base import Check, ReportContext, StageReport
from fmaudit.stages.global_stage import global_summary
from fmaudit.stats import StageStats

DEDUP_REPORT = "dedup.json"


def sample_pairs(stats: StageStats) -> list[dict]:
    """The anonymized samples, joined into (kept, dropped) pairs."""
    pairs: dict[int, dict] = {}
    for s in stats.samples:
        if s["kind"].startswith("pair"):
            pair = pairs.setdefault(int(s["kind"][4:]), {"similarity": s["similarity"]})
            pair[s["role"]] = {"id": s["id"], "text": s["text"]}
    return [pairs[k] for k in sorted(pairs)]


def _root(doc: str, dropped_as: dict[str, str]) -> str:
    seen = set()
    while doc in dropped_as and doc not in seen:
        seen.add(doc)
        doc = dropped_as[doc]
    return doc


def truth_recall(ctx: ReportContext) -> dict:
    """Planted duplicate pairs (truth rows ``{"kind": "duplicate", "id", "of", "how"}``) the run removed: a pair
    counts when one of its documents was dropped and both lead, through the ``duplicate.of`` records of the
    dedup stages (an exact copy dropped for a near copy later dropped itself), to the same kept document."""
    dropped_as: dict[str, str] = {}
    for path in sorted((ctx.out_dir / "dropped").glob("*.jsonl*")):
        for _, row in iter_json_rows(path):
            dup = row.get("meta", {}).get("duplicate")
            if dup:
                dropped_as[row["id"]] = dup["of"]
    planted, found = Counter(), Counter()
    for _, row in iter_json_rows(ctx.truth_path):
        if row.get("kind") != "duplicate":
            continue
        a, b = row["id"], row["of"]
        planted[row["how"]] += 1
        found[row["how"]] += bool((a in dropped_as or b in dropped_as) and _root(a, dropped_as) == _root(b, dropped_as))
    total = sum(planted.values())
    return {"planted": total, "found": sum(found.values()), "recall": sum(found.values()) / total if total else None,
            "by_kind": {how: {"planted": n, "found": found[how]} for how, n in sorted(planted.items())}}


def dedup_report(stage: str, settings, stats: StageStats, ctx: ReportContext) -> StageReport:
    summary = global_summary(ctx.out_dir, stage)
    seen, dups = stats.by_prefix("source_in:"), stats.by_prefix("source_dup:")
    n_in, n_dup = sum(seen.values()), sum(dups.values())
    by_source = {src: {"documents": n, "duplicates": dups.get(src, 0), "duplicate_rate": dups.get(src, 0) / n}
                 for src, n in seen.items()}
    metrics = {"duplicate_rate": n_dup / n_in if n_in else 0.0, "duplicates": n_dup,
               "clusters": summary["clusters"]}
    lsh = summary.get("lsh")
    if lsh:
        metrics.update({"candidate_pairs": summary["candidate_pairs"],
                        "candidate_false_positive_rate": summary["candidate_false_positive_rate"],
                        "lsh_fp_area": lsh["fp_area"], "lsh_fn_area": lsh["fn_area"]})
    hist = stats.histograms.get("similarity")
    details = {
        "duplicate_rate_by_source": by_source,
        "cluster_size_histogram": summary["cluster_sizes"],
        "removed_similarity_histogram": hist.to_json() if hist else None,
        "sample_pairs": sample_pairs(stats),
        "global_step": summary,
    }
    checks = []
    if ctx.truth_path is not None:
        details["truth"] = truth = truth_recall(ctx)
        if settings.min_truth_recall is not None and truth["recall"] is not None:
            checks.append(Check.evaluate("planted_duplicate_recall", truth["recall"], settings.min_truth_recall,
                                         "min", "error", "share of planted duplicate pairs removed (ground truth)"))
    section = {"stage": stage, "settings": settings.model_dump(mode="json"), "metrics": metrics, **details}
    path = ctx.reports_dir / DEDUP_REPORT
    combined = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"stages": {}}
    combined["stages"][stage] = section
    write_json_atomic(path, combined)
    return StageReport(metrics=metrics, checks=checks, details=details)
