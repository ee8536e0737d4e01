"""``fmaudit trace AUDIT_DIR --check NAME``: rank the training documents behind a failed check.

For the items that make the check fail (:func:`~fmaudit.remedy.locate.failing_items`), each taken as what
the model produced (:func:`~fmaudit.remedy.locate.item_query`), influence functions
(:func:`fmaudit.explain.ranking.rank_training_documents`, EK-FAC with TF-IDF candidate pre-filtering) score
the training documents; a document's trace score is its influence summed over the failing items, and the
top K are joined with what the data stages recorded about them (:mod:`fmaudit.remedy.records`). The
answer to "were these documents flagged and kept, near a threshold, or never looked at?" is the verdict
column, counted in ``summary``.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Optional

from fmaudit.corpus import read_documents, write_json_atomic
from fmaudit.remedy.locate import Finding, item_query, locate
from fmaudit.remedy.records import stage_records

TRACE_FILE = "trace.json"
FORMAT = "fmaudit-trace-1"


def trace_check(audit_dir: str | Path, check: str, *, top_k: int = 10, candidates: int = 100, max_items: int = 16,
                checkpoint: Optional[str | Path] = None, data: Optional[str | Path] = None,
                out: Optional[str | Path] = None, cache_dir: Optional[str | Path] = None, settings=None) -> dict:
    """Trace ``check`` of ``audit_dir``; writes and returns the trace (``out/trace.json``, default
    ``AUDIT_DIR/trace/``). ``settings``: the :class:`~fmaudit.explain.influence.InfluenceSettings` (default
    ones when None)."""
    from fmaudit.explain.ranking import rank_training_documents

    t0 = time.perf_counter()
    finding = locate(audit_dir, check, checkpoint=checkpoint, data=data)
    explained = finding.failing[:max_items]
    queries = [item_query(it, finding.audit, finding.texts) for it in explained]
    result = rank_training_documents(finding.checkpoint, finding.data_dir, queries, top_k=top_k,
                                     candidates=candidates, cache_dir=cache_dir, settings=settings)
    total: dict[str, float] = defaultdict(float)
    hits: Counter = Counter()
    best: dict[str, int] = {}
    for q in result.queries:
        for doc_id, score in q.scores.items():
            total[doc_id] += score
        for d in q.most:
            hits[d.doc_id] += 1
            best[d.doc_id] = min(best.get(d.doc_id, d.rank), d.rank)
    ranked = sorted(total, key=lambda i: (-total[i], i))[:top_k]
    docs = {d.id: d.to_json() for d in read_documents([finding.data_dir]) if d.id in set(ranked)}
    records = stage_records(finding.job_dir, docs)
    snippets = {d.doc_id: d.text for q in result.queries for d in q.most + q.least}
    rows = [{"rank": n, "id": doc_id, "score": total[doc_id], "in_top_k_of": hits.get(doc_id, 0),
             "best_rank": best.get(doc_id), "text": snippets.get(doc_id, ""), **records.get(doc_id, {})}
            for n, doc_id in enumerate(ranked, 1)]
    trace = {
        "format": FORMAT,
        "audit": finding.audit, "check": finding.check, "audit_dir": str(finding.audit_dir),
        "checkpoint": {"path": str(finding.checkpoint),
                       "sha256": (finding.report.get("details", {}).get("checkpoint") or {}).get("sha256")},
        "training_run": str(finding.train_run) if finding.train_run else None,
        "data_dir": str(finding.data_dir), "job_dir": str(finding.job_dir),
        "failing_items": len(finding.failing), "items_explained": [it.get("id") for it in explained],
        "influence": {"method": "EK-FAC influence functions (kronfluence)", "prefilter": result.prefilter,
                      "candidates_per_query": candidates, "candidates_scored": result.candidates_scored,
                      "corpus_size": result.corpus_size, "coverage": result.coverage,
                      "aggregate": "sum of each document's influence over the failing items"},
        "documents": rows,
        "summary": dict(Counter(r.get("verdict", "never_looked_at") for r in rows)),
        "seconds": time.perf_counter() - t0,
    }
    out = Path(out) if out is not None else finding.audit_dir / "trace"
    write_json_atomic(out / TRACE_FILE, trace)
    return trace


def format_trace(trace: dict) -> str:
    """The trace as a readable table (one line per document)."""
    head = (f"{trace['audit']}:{trace['check']['name']} = {trace['check']['value']} "
            f"({trace['check']['direction']} {trace['check']['threshold']}): {trace['failing_items']} failing items, "
            f"{trace['influence']['candidates_scored']} of {trace['influence']['corpus_size']} training documents "
            f"scored ({trace['influence']['prefilter']} pre-filter)")
    lines = [head, f"{'rank':>4}  {'id':24s} {'score':>11}  {'verdict':16s} {'toxicity':>9}  pii  cda  source"]
    for r in trace["documents"]:
        tox = r.get("toxicity") or {}
        share = tox.get("share_of_threshold")
        source = r.get("source") or {}
        lines.append(f"{r['rank']:>4}  {r['id'][:24]:24s} {r['score']:>11.4g}  {r.get('verdict', ''):16s} "
                     f"{'' if share is None else f'{share:.0%}':>9}  {','.join(r.get('pii_types') or {}) or '-':4s} "
                     f"{'yes' if r.get('cda') else '-':4s} {source.get('file', '?')}:{source.get('line', '?')}")
    lines.append("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(trace["summary"].items())))
    return "\n".join(lines)


__all__ = ["Finding", "format_trace", "trace_check"]
