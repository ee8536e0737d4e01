"""The audit step of ``fmaudit demo``: the final demo model audited with the policy's ``audits:`` section."""

from __future__ import annotations

from fmaudit.demo import demo_step


@demo_step(order=35)
def audit_step(ctx) -> None:
    """Run ``fmaudit audit`` on ``ctx.out/train/model`` into ``ctx.out/audit``; note each metric with its interval."""
    from fmaudit.audits.runner import run_audit
    from fmaudit.reports.envelope import read_reports

    policy = ctx.policy
    model_dir = ctx.out / "train" / "model"
    if not policy.audits or not model_dir.is_dir():
        ctx.notes.append(f"audit: skipped ({'no audits: section' if not policy.audits else 'no trained model'})")
        return
    out = ctx.out / "audit"
    summary = run_audit(model_dir, policy, out)
    ctx.reports_dirs.append(out / "reports")
    ctx.notes.append(f"audit of {model_dir} (95% intervals; items in {out / 'items'}):")
    for report in read_reports(out / "reports"):
        for name, m in report["details"].get("intervals", {}).items():
            if "." not in name:  # headline metrics; per-group ones are in the report
                ctx.notes.append(f"  {report['stage']:<12} {name:<28} {m['value']:.4g} "
                                 f"[{m['ci_low']:.4g}, {m['ci_high']:.4g}] n={m['n']}")
    verdict = "passed" if summary["passed"] else "FAILED: " + ", ".join(summary["failed"])
    ctx.notes.append(f"audit checks {verdict} (rows 'bias.pairs', 'perplexity' of the table below)")
