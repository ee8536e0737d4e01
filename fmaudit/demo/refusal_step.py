"""The refusal-tuning step of ``fmaudit demo``: the demo model refusal-tuned (SFT on the built-in generator's
data), with refusal and over-refusal rates on held-out prompts before and after."""

from __future__ import annotations

from fmaudit.demo import demo_step

# Small enough for ~1 minute on 2 CPU cores (the policy's tune.refusal section, if any, is used as the base).
# The gates stay the production ones and are reported, as warnings: a 1.3M-parameter model tuned for a minute
# reaches about 40% refusal with a perplexity cost far above 25%, and the demo shows that rather than hiding it.
DEMO = dict(cpu_threads=1, eval_limit=24, max_new_tokens=12, examples=600, perturbations=["typos", "roleplay"],
            sft={"steps": 150, "lr": 1e-2, "micro_batch": 16}, check_severity="warning")
# Measured with --quick on 2 shared cores: refusal 0% -> 42%, over-refusal 0% -> 17% (n=12 each), ~45 s CPU.
QUICK = dict(eval_limit=12, sft={"steps": 100, "lr": 1e-2, "micro_batch": 16}, perturbations=["typos"])


@demo_step(order=45)
def refusal_step(ctx) -> None:
    """Refusal-tune ``ctx.out/train/model`` into ``ctx.out/refusal`` and note the before/after figures."""
    from fmaudit.cli.refusal import summary_lines
    from fmaudit.tune import MODEL_STAGES

    model = ctx.out / "train" / "model"
    if not (model / "config.json").exists():
        ctx.notes.append("refusal: skipped (no demo model)")
        return
    cls = MODEL_STAGES.get("refusal")
    base = ctx.policy.tune_settings("refusal").model_dump(exclude_unset=True)
    settings = cls.Settings.model_validate({**DEMO, **base, **(QUICK if ctx.quick else {})})
    out = ctx.out / "refusal"
    result = cls(settings).run(model, out, policy=ctx.policy, progress=False)
    ctx.notes.append(f"refusal-tune ({settings.method}, {settings.sft.steps} steps) -> {out}:")
    ctx.notes.extend("  " + line for line in summary_lines(result.report))
    ctx.reports_dirs.append(out / "reports")
