"""The adapt step of ``fmaudit demo``: the demo model adapted to the biography task (planted gender disparity)
under fairness constraints; prints the accuracy-disparity trade-off table."""

from __future__ import annotations

from fmaudit.demo import demo_step

@demo_step(order=40)
def adapt_step(ctx) -> None:
    """Run the policy's ``tune.adapt`` on ``ctx.out/train/model`` and the task the corpus step wrote."""
    from fmaudit.registry import missing_requirements
    from fmaudit.tune.adapt.stage import AdaptStage

    policy = ctx.policy
    model_dir = ctx.out / "train" / "model"
    if "adapt" not in policy.tune or not model_dir.is_dir():
        ctx.notes.append(f"adapt: skipped ({'no trained demo model' if not model_dir.is_dir() else 'no tune.adapt in ' + str(ctx.policy_path)})")
        return
    if missing_requirements(AdaptStage):
        ctx.notes.append("adapt: skipped (needs fairlearn: pip install 'fmaudit[fairness]')")
        return
    settings = policy.tune["adapt"]
    task = ctx.out / "task" / "bios.csv"  # written by the corpus step
    if ctx.quick:  # 600 biographies (corpus step), the first constraint only, fewer resamples
        settings = settings.model_copy(update={"bootstrap": min(settings.bootstrap, 100),
                                               "constraints": settings.constraints[:1]})
    out = ctx.out / "adapt"
    stage = AdaptStage(settings.model_copy(update={"task": str(task)}))
    stage.run(model_dir, out, policy=policy)
    result = stage.result_
    m = result.report["metrics"]
    metric = settings.bound.metric
    ctx.notes.append(f"adapt: {m['rows']} biographies ({task.name}), {m['models']} models on the demo model's "
                     f"pooled hidden states; sensitive: {', '.join(settings.columns.sensitive)}; bound "
                     f"{metric} <= {settings.bound.max:g} (* = chosen; 95% bootstrap intervals):")
    ctx.notes.extend("  " + line for line in result.table.splitlines())
    if result.chosen:
        ctx.notes.append(f"  chosen {result.chosen}: {metric} {m['unconstrained_' + metric]:.3f} -> "
                         f"{m['chosen_' + metric]:.3f} at an accuracy cost of {m['accuracy_cost']:.3f} "
                         f"-> {out / 'model.joblib'}")
    ctx.reports_dirs.append(out / "reports")
