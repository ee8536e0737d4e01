"""The last steps of ``fmaudit demo``: from the one failure the data stages leave to its fix, with evidence.

The demo corpus hides a spread secret (:func:`fmaudit.demo.repeats.plant_secrets`: an alarm code pasted into
several ordinary pages). It is not PII and no two copies share a page, so every data stage keeps it and the
demo model memorises it. The loop runs in a worker process (:func:`run_loop`, one torch thread) beside the
audit, adapt, explain, refusal and compare steps:

1. audit the demo model with ``privacy.canaries`` pointed at the secret's record, and the audits whose figures
   are the fix's collateral cost (``loop/audit-policy.yaml``, ``loop/audit``);
2. trace the first failed check that holds texts to trace (``fmaudit trace``: EK-FAC influence over TF-IDF
   candidates, ``loop/audit/trace``);
3. remediate (``fmaudit remediate --action drop``: a ``drop_ids`` stage in ``fix/policy.yaml``, the filter
   re-run into ``fix/filtered``);
4. retrain with the same settings, seed, budget and tokenizer, re-audit and compare by paired statistics
   with the traced audit (``--retrain``: ``fix/train``, ``fix/audit``, ``fix/reports/remediation.json``).

The ``fix`` step waits for it and prints the trace (checked against the corpus truth), the change, the traced
check before and after, whether the change is significant, and what it cost.
"""

from __future__ import annotations

from pathlib import Path

from fmaudit.demo import demo_step
from fmaudit.errors import InputError

TOP = 60             # documents a trace lists, all of them dropped (the demo planted 48 pages)
CANDIDATES = 80      # TF-IDF candidates scored per failing item
FIT_DOCUMENTS = 200  # documents the EK-FAC factors are fitted on
SECRET_CANDIDATES = 10_000  # of the 10^6 secrets: a first-ranked one has exposure >= 11.3 bits (9.0 with 2,000)
COLLATERAL = ("perplexity", "bias.counterfactual")  # audited before and after beside the secret


def _audit_policy(ctx, path: Path) -> Path:
    """The demo policy whose ``audits:`` are ``privacy.canaries`` on the spread secret's record and the
    :data:`COLLATERAL` audits, written to ``path``."""
    import yaml

    from fmaudit.demo.corpus import SECRETS_RECORD
    from fmaudit.policy import resolve_policy_path

    data = yaml.safe_load(Path(resolve_policy_path(ctx.policy_path)).read_text(encoding="utf-8"))
    audits = data.get("audits") or {}
    canaries = {**(audits.get("privacy.canaries") or {}), "record": str(ctx.out / SECRETS_RECORD),
                "missing": "error", "candidates": SECRET_CANDIDATES}
    data["audits"] = {"privacy.canaries": canaries, **{k: audits[k] for k in COLLATERAL if k in audits}}
    data["name"] = f"{data.get('name', 'demo')}-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {ctx.policy_path} with privacy.canaries on the corpus's spread secret (fmaudit demo)\n"
                    + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _trace_first_failure(audit_dir: Path, summary: dict, untraceable: list[str]):
    """The trace of the first failed check that has texts to trace (the secret's exposure first, then errors
    before warnings); the others tried go to ``untraceable``."""
    from fmaudit.explain.influence import InfluenceSettings
    from fmaudit.remedy.trace import trace_check

    failed = sorted((c for c in summary["checks"] if not c["passed"]),
                    key=lambda c: (c["report"] != "privacy.canaries", c["severity"] != "error"))
    for check in failed:
        name = f"{check['report']}:{check['name']}"
        try:
            return trace_check(audit_dir, name, top_k=TOP, candidates=CANDIDATES,
                               settings=InfluenceSettings(fit_max_documents=FIT_DOCUMENTS))
        except InputError as e:  # a check whose items keep only hashes, or no per-item field
            untraceable.append(f"{name}: not traceable ({e})")
    return None


def run_loop(out: str, model_dir: str, policy_path: str, audit_policy: str, workers=None) -> dict:
    """Audit, trace, remediate, retrain and re-audit (for a worker process); what the fix step prints."""
    import torch

    from fmaudit.audits.runner import run_audit
    from fmaudit.policy import load_policy
    from fmaudit.remedy.remediate import remediate
    from fmaudit.remedy.rerun import rerun

    torch.set_num_threads(1)  # the demo's other steps have the other core
    out, untraceable = Path(out), []
    summary = run_audit(Path(model_dir), load_policy(audit_policy), out / "loop" / "audit")
    trace = _trace_first_failure(out / "loop" / "audit", summary, untraceable)
    if trace is None:
        return {"untraceable": untraceable, "trace": None}
    record = remediate(out / "loop" / "audit" / "trace", policy_path, out / "fix", action="drop", workers=workers,
                       progress=False)
    report = rerun(out / "fix", audit_policy=audit_policy, progress=False)
    return {"untraceable": untraceable, "trace": trace, "remediation": record, "report": report}


@demo_step(order=32)
def trace_step(ctx) -> None:
    """Start the finding-to-fix loop on the demo model in a worker process (skipped in ``--quick``)."""
    from fmaudit.demo.corpus import SECRETS_RECORD

    model_dir = ctx.out / "train" / "model"
    if ctx.quick:
        ctx.notes.append("finding to fix: skipped in --quick (it retrains the model); `fmaudit demo` runs it")
        return
    if not (model_dir / "config.json").is_file() or not (ctx.out / SECRETS_RECORD).is_file() \
            or "privacy.canaries" not in ctx.policy.audits:
        ctx.notes.append("finding to fix: skipped (no demo model, no spread secret or no privacy.canaries audit)")
        return
    audit_policy = _audit_policy(ctx, ctx.out / "loop" / "audit-policy.yaml")
    ctx.start("loop", run_loop, str(ctx.out), str(model_dir), str(ctx.policy_path), str(audit_policy), ctx.workers)


def _note_trace(ctx, trace: dict) -> None:
    import json

    planted = {r["id"] for r in map(json.loads, ctx.truth.read_text(encoding="utf-8").splitlines())
               if r["kind"] == "secret"} if ctx.truth.is_file() else set()
    rows = trace["documents"]
    listed = {r["id"].split("#")[0] for r in rows}
    c = trace["check"]
    what = " on the spread secret" if trace["audit"] == "privacy.canaries" else ""
    ctx.notes.append(f"finding to fix: {trace['audit']}:{c['name']} = {c['value']:.4g} ({c['direction']} "
                     f"{c['threshold']}, {c['severity']}){what}; traced ({trace['failing_items']} "
                     f"failing items, {trace['influence']['candidates_scored']} of "
                     f"{trace['influence']['corpus_size']} training documents scored, {trace['seconds']:.0f} s) "
                     f"-> {Path(trace['audit_dir']) / 'trace' / 'trace.json'}:")
    for row in rows[:5]:
        source = row.get("source") or {}
        ctx.notes.append(f"  {row['rank']}. {row['id']:<24} influence {row['score']:.3g}  {row.get('verdict', '?'):<16}"
                         f" {source.get('file', '?')}:{source.get('line', '?')}")
    ctx.notes.append(f"  ... {len(rows)} listed, holding {len(listed & planted)} of the {len(planted)} pages the "
                     f"secret was pasted into (truth.jsonl); verdicts: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(trace["summary"].items())))


@demo_step(order=60)
def fix_step(ctx) -> None:
    """Wait for the loop; note the trace, the change, the traced check before and after, and what it cost."""
    from fmaudit.demo.compare_step import format_comparison
    from fmaudit.policy import load_policy
    from fmaudit.reports.envelope import read_json
    from fmaudit.remedy.remediate import format_remediation

    done = ctx.result("loop")
    if done is None:
        return
    ctx.notes.extend(f"trace of {line}" for line in done["untraceable"])
    if done["trace"] is None:
        ctx.notes.append("finding to fix: every audit check of the demo model passed, nothing to trace")
        return
    _note_trace(ctx, done["trace"])
    ctx.notes.extend("  " + line for line in format_remediation(done["remediation"]).splitlines())
    report, fix = done["report"], ctx.out / "fix"
    m, verdict = report["metrics"], {c["name"]: c for c in report["checks"]}
    fixed = next(c for name, c in verdict.items() if name.startswith("fixed:"))
    compared = read_json(fix / "audit" / "reports" / "compare.json")["details"]
    policy = load_policy(ctx.out / "loop" / "audit-policy.yaml")
    gates = {name: policy.audit_settings(name).checks for name in {k.split(":")[0] for k in compared["comparisons"]}}
    ctx.notes.append(f"fix: {m['documents_removed']} documents fewer, model retrained (same settings, seed and "
                     f"budget; held-out loss {m['final_val_loss_before']:.3f} -> {m['final_val_loss_after']:.3f}) "
                     f"and re-audited: {report['details']['finding']} {m['before']:.4g} -> {m['after']:.4g} "
                     f"({'passes' if fixed['passed'] else 'STILL FAILS'}; the change is "
                     f"{'significant' if verdict['fix_significant']['passed'] else 'NOT significant'}, "
                     f"q={m['q_value']:.3g}) -> {fix / 'reports' / 'remediation.json'}:")
    table = format_comparison(compared["comparisons"], gates, compared.get("alpha", 0.05), labels=("before", "after"))
    ctx.notes.extend("  " + line for line in table.splitlines())
    moved = sorted(k for k, row in report["details"]["collateral"].items() if row.get("regression"))
    if moved:  # the paired tests resample the items, not the training run
        ctx.notes.append(f"  collateral: {', '.join(moved)} got significantly worse. The paired test resamples the "
                         f"audit items, not the training run: retraining on {m['documents_removed']} fewer documents "
                         f"moved it this far, so a change of this size between two runs says little about the data "
                         f"by itself")
    ctx.reports_dirs.append(fix / "reports")
