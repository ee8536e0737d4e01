"""The driver of ``fmaudit audit``: which audits run, on which checkpoints, and what lands in the output folder.

One checkpoint (``OUT/``):

    OUT/items/<audit>.jsonl     one row per prompt, pair or sample: inputs (anonymized), outputs, scores, outcome
    OUT/reports/<audit>.json    the report envelope (kind "audit"): metric values, checks, and in ``details``
                                each metric's interval (``intervals``), the protocol and the checkpoint
    OUT/reports/compare.json    with ``--compare``: paired deltas, tests, Benjamini-Hochberg q, regressions
    OUT/reports/summary.json    every check and the verdict (exit 0 pass, 1 a check failed)

A training run folder (``RUN/checkpoints/step-N/``) audits every checkpoint into ``OUT/step-N/`` and adds
``OUT/reports/trend.json`` with each metric across steps and one trend plot per audit (monitoring); the
verdict is the last checkpoint's. ``--rescore`` recomputes a saved audit folder's results from its items.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from fmaudit.audits import AUDITS
from fmaudit.audits.base import Audit, AuditContext, AuditResult
from fmaudit.audits.stats import Metric
from fmaudit.errors import InputError, UsageError

ITEMS, REPORTS = "items", "reports"


@dataclass
class AuditOptions:
    """How ``fmaudit audit`` runs (command-line choices beside the policy)."""

    only: Optional[Sequence[str]] = None
    data: dict[str, Path] = field(default_factory=dict)
    device: Optional[str] = None  # "cpu", "cuda", "cuda:1"...; "auto": accelerate's device_map over every GPU
    compare: Optional[Path] = None
    alpha: float = 0.05
    engine: str = "local"  # run folders: "ray" audits the checkpoints as Ray tasks (same reports)
    address: Optional[str] = None  # Ray cluster address; None: a private local instance
    trust_remote_code: bool = False
    allow_pickle: bool = False
    threads: Optional[int] = None  # torch intra-op threads on CPU; None: 1 for a small model, else torch's


def plan(policy, options: AuditOptions) -> list[Audit]:
    """The audits to run, configured from the policy (and ``--data``), each preflighted: no model is loaded yet."""
    in_policy = list(policy.audits)
    names = list(options.only) if options.only else in_policy
    if not names:
        raise UsageError(f"{policy.path or policy.name}: the policy has no audits: section (and no --only given)")
    for audit_name in options.data:
        if audit_name not in names:
            raise UsageError(f"--data {audit_name}=...: audit {audit_name!r} is not run (audits: {', '.join(names)})")
    audits = []
    for audit_name in names:
        cls = AUDITS.get(audit_name)
        settings = policy.audit_settings(audit_name)
        if audit_name in options.data:
            settings = settings.model_copy(update={"data": Path(options.data[audit_name])})
        audit = cls(settings)
        audit.preflight()
        audits.append(audit)
    return audits


def load_model(path: Path, options: AuditOptions):
    from fmaudit.audits.model import ModelUnderAudit

    auto = options.device == "auto"
    return ModelUnderAudit(path, device=None if auto else options.device, device_map="auto" if auto else None,
                           trust_remote_code=options.trust_remote_code, allow_pickle=options.allow_pickle)


# Below this many parameters a CPU forward pass is made of matrices too small for intra-op threads to pay: on
# 2 cores the demo model (1.3M) generates several times faster, in a fraction of the CPU time, on one thread
# (benchmarks/default_audit.py measures it), and one thread is the same arithmetic on every machine.
SMALL_MODEL_PARAMETERS = 50_000_000


@contextmanager
def cpu_threads(mua, threads: Optional[int] = None):
    """Run the block with ``threads`` torch intra-op threads when the model is on CPU (None: one thread for a
    model under SMALL_MODEL_PARAMETERS, torch's setting for a larger one); the setting is restored after."""
    import torch

    if mua.device.type != "cpu":
        yield
        return
    if threads is None:
        threads = 1 if sum(p.numel() for p in mua.model.parameters()) < SMALL_MODEL_PARAMETERS else None
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def audit_checkpoint(mua, audits: list[Audit], out: Path, policy, run_id: str,
                     threads: Optional[int] = None) -> dict[str, AuditResult]:
    """Run every audit on one loaded checkpoint; write its items and reports under ``out``."""
    results = {}
    ctx = AuditContext(out, str(mua.path), mua.sha256)
    with cpu_threads(mua, threads):
        for audit in audits:
            started, t0 = _now(), time.perf_counter()
            result = audit.run(mua, ctx)
            write_result(audit, result, ctx, policy, run_id, started, time.perf_counter() - t0, mua.describe())
            results[audit.name] = result
    return results


def write_result(audit: Audit, result: AuditResult, ctx: AuditContext, policy, run_id: str, started: str,
                 wall_s: float, checkpoint: dict) -> Path:
    from fmaudit.corpus import sha256_file, write_jsonl
    from fmaudit.reports import make_report, write_report

    items_path = ctx.items_dir / f"{audit.name}.jsonl"
    write_jsonl(items_path, result.items)
    protocol = result.protocol.to_json()
    inputs = [{"path": protocol["data_file"], "sha256": protocol["data_sha256"]}] if protocol["data_sha256"] else []
    if checkpoint.get("sha256"):
        inputs.append({"path": checkpoint["path"], "sha256": checkpoint["sha256"]})
    report = make_report(
        audit.name, run_id, started, kind="audit", policy=policy,
        section=audit.settings.model_dump(mode="json"), inputs=inputs,
        metrics={k: m.value for k, m in result.metrics.items()}, checks=result.checks,
        protocol=protocol,
        details={"intervals": {k: m.to_json() for k, m in result.metrics.items()}, "checkpoint": checkpoint, "items_file": f"{ITEMS}/{items_path.name}",
                 "items_sha256": sha256_file(items_path), "items": len(result.items), **result.details},
        timings={"wall_s": round(wall_s, 3)})
    return write_report(ctx.reports_dir, report)


def read_result(folder: Path, audit_name: str) -> tuple[dict, list[dict]]:
    """``(report, items)`` of one audit saved in an audit folder; InputError naming the missing file."""
    from fmaudit.corpus import iter_json_rows
    from fmaudit.reports.envelope import read_json

    report_path = folder / REPORTS / f"{audit_name}.json"
    items_path = folder / ITEMS / f"{audit_name}.jsonl"
    for p in (report_path, items_path):
        if not p.is_file():
            raise InputError(f"{p}: missing (not an audit folder of {audit_name}?)")
    return read_json(report_path), [row for _, row in iter_json_rows(items_path)]


def rescore(folder: Path, audits: list[Audit], out: Path, policy, run_id: str) -> dict[str, AuditResult]:
    """Recompute each audit's result from the items saved in ``folder`` (new thresholds, new scorer): no model."""
    results = {}
    for audit in audits:
        started, t0 = _now(), time.perf_counter()
        report, items = read_result(folder, audit.name)
        ctx = AuditContext(out, report["details"]["checkpoint"].get("path"), report["details"]["checkpoint"].get("sha256"))
        result = audit.rescore(items, report["protocol"], ctx)
        result.details["rescored_from"] = str(folder)
        write_result(audit, result, ctx, policy, run_id, started, time.perf_counter() - t0,
                     report["details"]["checkpoint"])
        results[audit.name] = result
    return results


def compare_with(baseline: Path, results: dict[str, AuditResult], audits: list[Audit], out: Path, policy,
                 run_id: str, alpha: float) -> dict:
    """Write ``reports/compare.json``: the results against a saved audit folder ``baseline``."""
    from fmaudit.audits.compare import RunSide, compare_runs
    from fmaudit.reports import make_report, write_report

    started = _now()
    before = {}
    for audit in audits:
        report, items = read_result(baseline, audit.name)
        theirs, ours = report.get("protocol", {}).get("data_sha256"), results[audit.name].protocol.data_sha256
        if theirs != ours:  # items are paired by id: they must come from the same prompt or pair set
            raise InputError(f"{baseline / REPORTS / (audit.name + '.json')}: audit {audit.name} ran on another "
                             f"data file (sha256 {str(theirs)[:12]}... vs {str(ours)[:12]}...); compare runs on the same set")
        before[audit.name] = RunSide({k: Metric.from_json(v) for k, v in report["details"]["intervals"].items()},
                                     items)
    after = {name: RunSide(r.metrics, r.items) for name, r in results.items()}
    gates = {a.name: a.settings.checks for a in audits}
    rows, checks = compare_runs(before, after, gates, alpha, seed=audits[0].settings.seed if audits else 0)
    report = make_report("compare", run_id, started, kind="audit", policy=policy,
                         metrics={f"{k}.delta": r["delta"] for k, r in rows.items()}, checks=checks,
                         details={"baseline": str(baseline), "alpha": alpha, "correction": "benjamini-hochberg",
                                  "comparisons": rows})
    write_report(out / REPORTS, report)
    return rows


def find_checkpoints(path: Path) -> Optional[list[Path]]:
    """The ``step-N`` checkpoints of a training run folder, in step order; None for a plain checkpoint."""
    folder = path / "checkpoints"
    if (path / "config.json").exists() or not folder.is_dir():
        return None
    steps = [p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")
             and (p / "config.json").exists()]
    return sorted(steps, key=lambda p: int(p.name.split("-")[1])) or None


def run_audit(target: str | Path, policy, out: str | Path, options: Optional[AuditOptions] = None,
              rescore_from: bool = False) -> dict:
    """``fmaudit audit``: audit a checkpoint, every checkpoint of a run folder, or (``rescore_from``) re-score
    a saved audit folder. Returns the run summary (its ``exit_code``: 0 all checks pass, 1 one failed)."""
    from fmaudit.reports import new_run_id, write_summary

    options = options or AuditOptions()
    target, out = Path(target), Path(out)
    audits = plan(policy, options)
    run_id = new_run_id()
    if rescore_from:
        results = rescore(target, audits, out, policy, run_id)
    elif (steps := find_checkpoints(target)) is not None:
        return _audit_run_folder(steps, audits, out, policy, run_id, options)
    elif options.engine != "local":
        raise UsageError(f"--engine {options.engine} spreads the checkpoints of a training run folder; "
                         f"{target} is one checkpoint")
    else:
        results = audit_checkpoint(load_model(target, options), audits, out, policy, run_id, options.threads)
    if options.compare is not None:
        baseline = Path(options.compare)
        if not (baseline / REPORTS).is_dir():  # a checkpoint: audit it first, with the same audits
            baseline_out = out / "baseline"
            audit_checkpoint(load_model(baseline, options), audits, baseline_out, policy, run_id, options.threads)
            baseline = baseline_out
        compare_with(baseline, results, audits, out, policy, run_id, options.alpha)
    return write_summary(out / REPORTS, run_id)


def _audit_run_folder(steps: list[Path], audits: list[Audit], out: Path, policy, run_id: str,
                      options: AuditOptions) -> dict:
    from fmaudit.audits.trend import write_trend
    from fmaudit.reports import write_summary
    from fmaudit.reports.envelope import read_reports

    def audit_one(step_dir: Path, step_out: Path) -> None:
        audit_checkpoint(load_model(step_dir, options), audits, step_out, policy, run_id, options.threads)

    if options.engine == "ray":
        from fmaudit.audits.ray_engine import audit_steps_on_ray

        audit_steps_on_ray(audit_one, steps, out, options)
    elif options.engine == "local":
        for step_dir in steps:
            audit_one(step_dir, out / step_dir.name)
    else:
        raise UsageError(f"--engine {options.engine!r}: audits run on 'local' or 'ray'")
    # The trend is built from the reports on disk, so both engines give it the same way.
    per_step = {int(s.name.split("-")[1]): read_reports(out / s.name / REPORTS) for s in steps}
    write_trend(per_step, out / REPORTS, policy, run_id)
    return write_summary(out / REPORTS, run_id, sources=[out / steps[-1].name / REPORTS])


def _now() -> str:
    from fmaudit.reports import now_iso

    return now_iso()


def metric_table(results: dict[str, AuditResult]) -> list[dict[str, Any]]:
    """One row per metric (audit, metric, value, interval, n, method), for printing."""
    return [{"audit": a, "metric": k, **m.to_json()} for a, r in results.items() for k, m in r.metrics.items()]
