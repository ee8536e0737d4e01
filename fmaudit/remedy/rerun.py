"""The before/after run of a remediation: retrain with the same settings, seed, budget and tokenizer on the
remediated data, audit the new model with the same audits, compare with the traced audit by paired statistics
(``fmaudit audit --compare``: McNemar or paired bootstrap, Benjamini-Hochberg across metrics), and report
whether the failed check now passes, whether the change is significant, and what it cost elsewhere.

    DIR/train/      the retrained model (same TrainSettings as the traced run, so same seed and steps)
    DIR/audit/      its audit, with reports/compare.json against the traced audit
    DIR/reports/remediation.json   the verdict (kind model_stage), lineage to both checkpoints
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from fmaudit.errors import InputError
from fmaudit.reports.envelope import read_json, read_reports


def _summary_row(trace: dict, audit_out: Path) -> tuple[Optional[dict], Optional[dict]]:
    """The check's new value (from the new audit) and the paired comparison row of its metric."""
    name = trace["check"]["name"]
    new = next((c for r in read_reports(audit_out / "reports") if r["stage"] == trace["audit"]
                for c in r["checks"] if c["name"] == name), None)
    compare = audit_out / "reports" / "compare.json"
    rows = read_json(compare)["details"]["comparisons"] if compare.is_file() else {}
    return new, rows.get(f"{trace['audit']}:{name}")


def _written(counts: dict) -> int:
    """Documents a filter run wrote to ``data/`` (kept and added): what a model trained on it reads."""
    return int(counts["kept"]) + int(counts.get("added", 0))


def rerun(remediation_dir: str | Path, *, audit_policy: Optional[str | Path] = None, progress: bool = True,
          device: Optional[str] = None) -> dict:
    """Retrain, re-audit and compare for the remediation in ``remediation_dir``; returns the report."""
    from fmaudit.audits.runner import AuditOptions, run_audit
    from fmaudit.core.config import TrainSettings
    from fmaudit.core.train import train
    from fmaudit.policy import load_policy
    from fmaudit.reports import make_report, new_run_id, now_iso, write_report, write_summary
    from fmaudit.reports.content import Check
    from fmaudit.reports.manifest import write_manifest

    out = Path(remediation_dir)
    record = read_json(out / "remediation.json")
    trace = read_json(Path(record["trace"]) / "trace.json" if Path(record["trace"]).is_dir() else Path(record["trace"]))
    if not trace.get("training_run"):
        raise InputError(f"{record['trace']}: the traced model is not an fmaudit training run: nothing to retrain")
    started, t0 = now_iso(), time.time()
    train_report = read_json(Path(trace["training_run"]) / "reports" / "train.json")
    settings = TrainSettings.model_validate(train_report["details"]["train_settings"])
    tokenizer = Path(train_report["details"]["data"]["tokenizer"])
    remediated = load_policy(out / "policy.yaml")
    result = train(settings, out / "filtered" / "data", tokenizer, out / "train", policy=remediated,
                   progress=progress, device=device)
    audit_report = next(r for r in read_reports(Path(trace["audit_dir"]) / "reports") if r["stage"] == trace["audit"])
    policy_file = audit_policy or audit_report["policy"]["file"]
    if not policy_file or not Path(policy_file).is_file():
        raise InputError(f"the traced audit's policy {policy_file!r} is not at hand: give it with --audit-policy")
    summary = run_audit(result.model_dir, load_policy(policy_file), out / "audit",
                        AuditOptions(compare=Path(trace["audit_dir"]), device=device))
    new, row = _summary_row(trace, out / "audit")
    before = trace["check"]
    better = row is not None and ((row["delta"] < 0) if before["direction"] == "max" else (row["delta"] > 0))
    significant = bool(row and row.get("significant") and better)
    collateral = {k: {f: v.get(f) for f in ("before", "after", "delta", "q_value", "significant", "regression")}
                  for k, v in (read_json(out / "audit" / "reports" / "compare.json")["details"]["comparisons"]
                               if (out / "audit" / "reports" / "compare.json").is_file() else {}).items()
                  if k != f"{trace['audit']}:{before['name']}"}
    checks = [
        Check.evaluate(f"fixed:{trace['audit']}:{before['name']}", new["value"] if new else None, before["threshold"],
                       before["direction"], "error", f"the traced check after remediation (before: {before['value']})")
        if new else Check(f"fixed:{trace['audit']}:{before['name']}", None, before["threshold"], before["direction"],
                          False, "error", "the new audit did not produce the check"),
        Check.evaluate("fix_significant", bool(significant), True, "equal", "error",
                       f"the change is significant and for the better (paired {row['test'] if row else 'test'}, "
                       f"Benjamini-Hochberg q={row['q_value']:.3g})" if row else "no paired comparison was possible"),
        Check.evaluate("no_collateral_regression", sum(bool(v.get("regression")) for v in collateral.values()), 0,
                       "max", "warning", "no other gated metric got significantly worse"),
    ]
    job_counts = read_json(Path(record["original_job"]) / "reports" / "pipeline.json")["counts"]
    metrics = {"before": before["value"], "after": new["value"] if new else None,
               "delta": row["delta"] if row else None, "q_value": row["q_value"] if row else None,
               "documents_removed": _written(job_counts) - _written(record["counts"]),
               "final_val_loss_before": train_report["metrics"].get("final_val_loss"),
               "final_val_loss_after": result.final_val_loss}
    from fmaudit.core.checkpoint import checkpoint_sha256

    lineage = [{"role": "input_checkpoint", "path": trace["checkpoint"]["path"],
                "sha256": checkpoint_sha256(trace["checkpoint"]["path"])},
               {"role": "output", "path": str(result.model_dir), "sha256": checkpoint_sha256(result.model_dir)}]
    report = make_report("remediation", new_run_id(), started, kind="model_stage", policy=remediated,
                         section=record["change"], metrics=metrics, checks=checks, lineage=lineage,
                         details={"finding": record["finding"], "change": record["change"], "comparison": row,
                                  "collateral": collateral, "audit_exit_code": summary["exit_code"]},
                         timings={"wall_s": time.time() - t0})
    write_report(out / "reports", report)
    write_summary(out / "reports", report["run_id"])
    write_manifest(out)
    return report


def format_rerun(report: dict) -> str:
    m = report["metrics"]
    lines = [f"{report['details']['finding']}: {m['before']} -> {m['after']} (delta {m['delta']}, BH q {m['q_value']})"]
    for c in report["checks"]:
        lines.append(f"  {'pass' if c['passed'] else 'FAIL'}  {c['name']}: {c['description']}")
    for key, row in report["details"]["collateral"].items():
        mark = " *" if row.get("significant") else ""
        lines.append(f"  {key}: {row['before']:.4g} -> {row['after']:.4g}{mark}")
    return "\n".join(lines)
