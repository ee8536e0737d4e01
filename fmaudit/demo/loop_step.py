"""The loop step of ``fmaudit demo``: trace one failing audit check of the demo model to its training documents.

After the audit step, the first failed audit check (if any) is traced with ``fmaudit trace`` (influence
functions over the failing items, TF-IDF candidates; :func:`fmaudit.remedy.trace.trace_check`) into
``ctx.out/audit/trace``; the top documents and their verdicts (flagged and kept, near a threshold, never
looked at) go to the notes, with the ``fmaudit remediate`` command that would fix it. ``--quick`` skips the
trace (an EK-FAC fit over the demo corpus takes longer than the quick demo's budget) and says how to run it.
"""

from __future__ import annotations

from fmaudit.demo import demo_step
from fmaudit.errors import InputError

TOP = 5


@demo_step(order=60)
def loop_step(ctx) -> None:
    """Trace the first failed check of ``ctx.out/audit`` (skipped in ``--quick``, or when every check passed)."""
    from fmaudit.reports.envelope import read_json

    audit_dir = ctx.out / "audit"
    summary_path = audit_dir / "reports" / "summary.json"
    if not summary_path.is_file():
        ctx.notes.append("trace: skipped (no audit)")
        return
    failed = [name for name in read_json(summary_path).get("failed", []) if ":" in name]
    if not failed:
        ctx.notes.append("trace: every audit check passed, no failure to trace")
        return
    command = f"fmaudit trace {audit_dir} --check {failed[0]} --top {TOP}"
    if ctx.quick:
        ctx.notes.append(f"trace: skipped in --quick (EK-FAC fit over the corpus exceeds ~60 s); run `{command}`")
        return
    from fmaudit.remedy.trace import trace_check

    try:
        trace = trace_check(audit_dir, failed[0], top_k=TOP, candidates=40)
    except InputError as e:  # a failed check with no per-item field to trace
        ctx.notes.append(f"trace of {failed[0]}: not traceable ({e})")
        return
    ctx.notes.append(f"trace of {failed[0]} ({trace['failing_items']} failing items; "
                     f"{trace['influence']['candidates_scored']} of {trace['influence']['corpus_size']} training "
                     f"documents scored; {trace['seconds']:.0f} s; {audit_dir / 'trace' / 'trace.json'}):")
    for row in trace["documents"]:
        source = row.get("source") or {}
        ctx.notes.append(f"  {row['rank']}. {row['id']:<24} influence {row['score']:.3g}  {row.get('verdict', '?'):<16}"
                         f" {source.get('file', '?')}:{source.get('line', '?')}")
    ctx.notes.append("  verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(trace["summary"].items()))
                     + f"; fix: fmaudit remediate {audit_dir / 'trace'} --policy {ctx.policy_path} "
                       f"--out {ctx.out / 'fix'} --retrain")
