"""The before/after step of ``fmaudit demo``: what the data stages bought, measured on two models.

A second model is trained on the RAW demo corpus (``corpus/``: the malformed records skipped by the reader,
nothing anonymized, deduplicated, filtered or augmented) with the demo model's tokenizer, settings, seed and
token budget. Both models are audited with the same protocol on the audits the mitigations aim at, and the
two audits are compared with the paired statistics of :mod:`fmaudit.audits.compare` (McNemar for rates, a
paired bootstrap for means, on the same items; Benjamini-Hochberg across every metric compared):

- ``bias.counterfactual``: the gender gap (the cda stage added a twin of every gendered document);
- ``toxicity.generation``: toxic continuations (the toxicity stage cut the toxic comments out);
- ``privacy.canaries`` on the corpus canary (``canaries.json`` of the corpus step: exact deduplication
  keeps one of its copies);
- ``privacy.regurgitation``: training PII in continuations (the pii stage rewrote it, dedup removed the
  repeated PII document). Both models get the demo filter job's prompts and ledger.

Writes ``compare/raw/train`` (the raw model), ``compare/raw/audit``, ``compare/filtered`` (audits of the demo
model whose settings differ from the audit step's: the corpus canary), ``compare/reports/compare.json``, and
prints the before/after table with its significance marks. The raw model trains in a worker process
(:meth:`~fmaudit.demo.run.DemoContext.start`, step ``raw-model``) beside the demo model's own training.
"""

from __future__ import annotations

from pathlib import Path

from fmaudit.demo import demo_step
from fmaudit.errors import InputError

AUDITS = ("bias.counterfactual", "toxicity.generation", "privacy.canaries", "privacy.regurgitation")
ALPHA = 0.05


def _side(folder: Path, audit_name: str):
    from fmaudit.audits.compare import RunSide
    from fmaudit.audits.runner import read_result
    from fmaudit.audits.stats import Metric

    report, items = read_result(folder, audit_name)
    side = RunSide({k: Metric.from_json(v) for k, v in report["details"]["intervals"].items()}, items)
    return side, report.get("protocol", {}).get("data_sha256")


def _audits(ctx, names: list[str]):
    """``(audit, raw_only_update, both_update)`` per audit: the settings both models are audited with."""
    from fmaudit.audits import AUDITS as REGISTRY

    planned = []
    for name in names:
        settings = ctx.policy.audit_settings(name)
        both, raw_only = {}, {}
        if name == "privacy.canaries":
            both = {"record": ctx.out / "canaries.json", "missing": "error"}
        elif name == "privacy.regurgitation":  # the filtered model's audit reads this job by default
            raw_only = {"data": ctx.filter_dir}
        settings = settings.model_copy(update=both)
        planned.append((REGISTRY.get(name)(settings), REGISTRY.get(name)(settings.model_copy(update=raw_only)),
                        bool(both)))
    return planned


def train_raw(policy_path: str, quick: bool, corpus: str, tokenizer: str, out: str) -> tuple[str, dict]:
    """Train the raw-corpus model (the demo model's settings, seed and budget); ``(model folder, train report)``."""
    from fmaudit.core.train import train
    from fmaudit.demo.train_step import QUICK
    from fmaudit.policy import load_policy

    policy = load_policy(policy_path)
    settings = policy.model.train.model_copy(update=QUICK) if quick else policy.model.train
    result = train(settings, Path(corpus), Path(tokenizer), Path(out), policy=policy, progress=False)
    return str(result.model_dir), result.report


@demo_step(order=27)
def raw_model_step(ctx) -> None:
    """Start training the raw-corpus model in a worker process (it is compared in the compare step)."""
    if ctx.policy.model.train is not None and (ctx.out / "tokenizer").is_dir():
        ctx.start("raw_model", train_raw, str(ctx.policy_path), ctx.quick, str(ctx.corpus_dir),
                  str(ctx.out / "tokenizer"), str(ctx.out / "compare" / "raw" / "train"))


@demo_step(order=55)
def compare_step(ctx) -> None:
    """Train on the raw corpus, audit both models the same way, compare; note the before/after table."""
    from fmaudit.audits.compare import compare_runs
    from fmaudit.audits.runner import AuditOptions, audit_checkpoint, load_model
    from fmaudit.reports import make_report, new_run_id, now_iso, write_report

    policy, model_dir = ctx.policy, ctx.out / "train" / "model"
    names = [n for n in AUDITS if n in policy.audits and (n != "privacy.canaries" or (ctx.out / "canaries.json").is_file())]
    if not model_dir.is_dir() or not names or not (ctx.out / "audit" / "reports").is_dir():
        ctx.notes.append("before/after: skipped (no trained and audited demo model, or no audits to compare)")
        return
    started, run_id, out = now_iso(), new_run_id(), ctx.out / "compare"
    raw_dir, raw_report = ctx.result("raw_model") or train_raw(str(ctx.policy_path), ctx.quick, str(ctx.corpus_dir),
                                                               str(ctx.out / "tokenizer"), str(out / "raw" / "train"))
    planned = _audits(ctx, names)
    audit_checkpoint(load_model(Path(raw_dir), AuditOptions()), [r for _, r, _ in planned], out / "raw" / "audit",
                     policy, run_id)
    again = [a for a, _, changed in planned if changed]
    if again:
        audit_checkpoint(load_model(model_dir, AuditOptions()), again, out / "filtered", policy, run_id)
    before, after = {}, {}
    for audit, _, changed in planned:
        before[audit.name], theirs = _side(out / "raw" / "audit", audit.name)
        after[audit.name], ours = _side(out / "filtered" if changed else ctx.out / "audit", audit.name)
        if theirs != ours:  # items are paired by id: both models must have had the same prompts
            raise InputError(f"{out}: audit {audit.name} of the two models ran on different data "
                             f"({str(theirs)[:12]}... vs {str(ours)[:12]}...)")
    gates = {a.name: a.settings.checks for a, _, _ in planned}
    rows, checks = compare_runs(before, after, gates, ALPHA, seed=planned[0][0].settings.seed)
    report = make_report("compare", run_id, started, kind="audit", policy=policy,
                         metrics={f"{k}.delta": r["delta"] for k, r in rows.items()}, checks=checks,
                         details={"baseline": str(out / "raw" / "audit"), "alpha": ALPHA,
                                  "correction": "benjamini-hochberg", "comparisons": rows,
                                  "before": {"model": raw_dir, "data": str(ctx.corpus_dir)},
                                  "after": {"model": str(model_dir), "data": str(ctx.filter_dir / "data")}})
    write_report(out / "reports", report)
    ctx.reports_dirs.append(out / "reports")
    m = raw_report["metrics"]
    ctx.notes.append(f"before/after: a model trained on the RAW corpus ({m['steps']} steps, {m['tokens_seen']:,} "
                     f"tokens, same tokenizer, settings and seed; held-out loss {m['final_val_loss']:.2f}) against "
                     f"the demo model (filtered + augmented corpus), same audits, paired items "
                     f"-> {out / 'reports' / 'compare.json'}:")
    ctx.notes.extend("  " + line for line in format_comparison(rows, gates, ALPHA).splitlines())


def format_comparison(rows: dict[str, dict], gates: dict[str, dict], alpha: float,
                      labels: tuple[str, str] = ("raw", "filtered")) -> str:
    """The before/after table: headline and gated metrics, with a mark for the significant changes."""
    from fmaudit.reports.table import format_table

    table = [("metric", *labels, "delta", "95% CI", "test", "q", "")]
    for key, row in rows.items():
        audit, name = key.split(":", 1)
        spec = gates.get(audit, {}).get(name)
        if "." in name and spec is None:  # per-group rows are in the report
            continue
        mark = "*" if row["significant"] else ""
        if mark and spec is not None:
            worse = row["delta"] > 0 if spec.direction == "max" else row["delta"] < 0
            mark += " worse" if worse else " better"
        table.append((key, f"{row['before']:.4g}", f"{row['after']:.4g}", f"{row['delta']:+.3g}",
                      f"[{row['ci_low']:+.3g}, {row['ci_high']:+.3g}]", row["test"], f"{row['q_value']:.3g}", mark))
    lines = [format_table(table)]
    lines.append(f"* significant: Benjamini-Hochberg q < {alpha} over the {len(rows)} metrics compared "
                 f"(better/worse by the policy's gate); n and p per metric in compare.json")
    return "\n".join(lines)
