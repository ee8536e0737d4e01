"""``fmaudit adapt``: adapt a checkpoint to a labelled task under fairness constraints and choose a model.

:func:`run_adapt` extracts the checkpoint's pooled hidden states for every row (cached), fits the unconstrained
classifier and each fairlearn mitigation on the same seeded training split, measures all of them on the test
split (accuracy, disparities, 95% bootstrap intervals), picks the most accurate model within the policy's
disparity bound, saves it (``OUT/model.joblib`` + ``OUT/model.json``) and writes ``OUT/reports/fairness.json``.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


from fmaudit.tune.adapt.settings import AdaptSettings
from fmaudit.tune.base import ModelStage, StageOutput

log = logging.getLogger(__name__)


@dataclass
class AdaptResult:
    report: dict
    chosen: Optional[str]
    models: dict  # name -> figures on the test split
    table: str  # the trade-off table, as printed

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.report["checks"] if c["severity"] == "error")


@contextmanager
def _quiet_grid_advice():
    """GridSearch logs advice on grid sizes at WARNING for every fit; the report states the grid size used."""
    grid_log = logging.getLogger("fairlearn.reductions._grid_search._grid_generator")
    level = grid_log.level
    grid_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        grid_log.setLevel(level)


def fit_and_measure(candidates: dict, X_train, X_test, y_train, y_test, A_train, A_test, groups_test,
                    settings: AdaptSettings) -> tuple[dict, dict]:
    """Fit every candidate on the training split and measure it on the test split; returns (figures by name,
    ``(fitted candidate, test predictions)`` by name)."""
    from fmaudit.tune.adapt.methods import method_of
    from fmaudit.tune.adapt.metrics import summary

    figures, fitted = {}, {}
    for name, model in candidates.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings(), _quiet_grid_advice():
            # fairlearn 0.15's own pandas deprecations (Series.at with new keys), not ours to act on
            warnings.filterwarnings("ignore", module=r"fairlearn\.")
            model.fit(X_train, y_train, sensitive_features=A_train)
        fit_s = time.perf_counter() - t0
        pred = model.predict(X_test, sensitive_features=A_test)
        figures[name] = {
            "method": method_of(name), "constraint": name.split("_", 1)[1] if "_" in name and name != "unconstrained"
            else None, **summary(y_test, pred, groups_test, settings.bootstrap, settings.seed),
            "needs_sensitive_features": bool(model.needs_sensitive_features_),
            "uses_sensitive_features_in_training": bool(model.uses_sensitive_features_), "fit_s": round(fit_s, 3)}
        fitted[name] = (model, pred)
    return figures, fitted


def run_adapt(checkpoint: str | os.PathLike, settings: AdaptSettings, task_path: str | os.PathLike,
              out: str | os.PathLike, policy=None, candidates: Optional[dict] = None,
              device: Optional[str] = None) -> AdaptResult:
    """Run the stage; ``candidates`` (name -> FairClassifier) replaces the policy's methods if given (the
    unconstrained baseline is added when missing); ``device``: where the checkpoint computes features."""
    from sklearn.preprocessing import StandardScaler

    from fmaudit.core.checkpoint import check_checkpoint
    from fmaudit.corpus import sha256_file
    from fmaudit.reports import make_report, new_run_id, now_iso, write_report
    from fmaudit.tune.adapt import report as R
    from fmaudit.tune.adapt.artefact import AdaptedModel, save_artefact
    from fmaudit.tune.adapt.features import cpu_threads
    from fmaudit.tune.adapt.methods import build_candidates
    from fmaudit.tune.adapt.metrics import by_group, small_groups
    from fmaudit.tune.adapt.select import choose, pareto_front
    from fmaudit.tune.adapt.task import load_task, split_task

    started, t0 = now_iso(), time.perf_counter()
    out, checkpoint, task_path = Path(out), Path(checkpoint), Path(task_path)
    check_checkpoint(checkpoint)
    task = load_task(task_path, settings.columns, settings.positive_label)
    split = split_task(task, settings.test_fraction, settings.seed)
    timings = {}
    with cpu_threads(settings.cpu_threads):
        X, feat, tuned = _features(checkpoint, task, split, settings, out, device)
    timings["features_s"] = round(time.perf_counter() - t0, 3)  # with the fine-tuning, if any
    if tuned:
        timings["finetune_s"] = tuned.pop("fit_s")
    scaler = StandardScaler().fit(X[split.train])
    Xtr, Xte = scaler.transform(X[split.train]), scaler.transform(X[split.test])
    A = task.sensitive
    A_tr, A_te = A.iloc[split.train].reset_index(drop=True), A.iloc[split.test].reset_index(drop=True)
    groups_te = task.groups[split.test]
    y_tr, y_te = task.labels[split.train], task.labels[split.test]
    if candidates is None:
        candidates = build_candidates(settings)
    elif "unconstrained" not in candidates:
        candidates = {"unconstrained": build_candidates(settings.model_copy(update={"methods": ["unconstrained"]}))
                      ["unconstrained"], **candidates}
    t1 = time.perf_counter()
    with cpu_threads(settings.cpu_threads):
        models, fitted = fit_and_measure(candidates, Xtr, Xte, y_tr, y_te, A_tr, A_te, groups_te, settings)
    timings["fit_s"] = round(time.perf_counter() - t1, 3)

    metric, bound = settings.bound.metric, settings.bound.max
    base_acc, base_dis = models["unconstrained"]["accuracy"], models["unconstrained"]["disparities"][metric]
    for m in models.values():
        m["qualifies"] = m["disparities"][metric] <= bound
        m["accuracy_cost"] = base_acc - m["accuracy"]  # against the unconstrained model, same test split
        m["disparity_ratio"] = m["disparities"][metric] / base_dis if base_dis > 0 else None
    front = pareto_front(models, metric)
    chosen = choose(models, metric, bound)
    shown = chosen or "unconstrained"
    pred = fitted[shown][1]
    groups = by_group(y_te, pred, A_te, settings.bootstrap, settings.seed)
    marginal = ({c: by_group(y_te, pred, A_te[[c]], settings.bootstrap, settings.seed) for c in A.columns}
                if len(A.columns) > 1 else {})
    notes = small_groups(groups, settings.min_group_size)
    for w in notes:
        log.warning("%s: %s", task_path, w)

    task_sha = sha256_file(task_path)
    artefact = None
    if chosen is not None:
        encoder = _save_encoder(out, tuned, settings)
        artefact = save_artefact(out, AdaptedModel(scaler, fitted[chosen][0], task.label_values), {**encoder,
            "checkpoint": str(checkpoint.resolve()), "checkpoint_sha256": feat["checkpoint_sha256"],
            "model": chosen, "columns": settings.columns.model_dump(), "label_values": list(task.label_values),
            "features": settings.features.model_dump(exclude={"cache_dir", "batch_size"}),
            "task": str(task_path), "task_sha256": task_sha, "cpu_threads": settings.cpu_threads,
            "feature_cache": str(Path(settings.features.cache_dir or out / "feature_cache").resolve())})
    base, best = models["unconstrained"], models[shown]
    metrics = {
        "rows": len(task), "train_rows": len(split.train), "test_rows": len(split.test), "models": len(models),
        "qualifying_models": sum(m["qualifies"] for m in models.values()), "chosen": chosen,
        "unconstrained_accuracy": base["accuracy"], f"unconstrained_{metric}": base["disparities"][metric],
        "chosen_accuracy": best["accuracy"] if chosen else None,
        f"chosen_{metric}": best["disparities"][metric] if chosen else None,
        "accuracy_cost": base["accuracy"] - best["accuracy"] if chosen else None,
        "chosen_needs_sensitive_features": best["needs_sensitive_features"] if chosen else None,
        "feature_cache_hits": feat["cache_hits"], "features_computed": feat["computed"],
        "finetuned_blocks": settings.finetune.blocks,
    }
    protocol = {"task": str(task_path), "task_sha256": task_sha, "checkpoint": str(checkpoint),
                "checkpoint_sha256": feat["checkpoint_sha256"], "features": settings.features.model_dump(),
                "feature_dim": feat["dim"], "finetune": settings.finetune.model_dump() if tuned else None,
                "split": {"seed": settings.seed, "test_fraction": settings.test_fraction,
                                                      "stratified_by": "label x intersectional group"},
                "bootstrap": {"resamples": settings.bootstrap, "interval": "95% percentile", "seed": settings.seed},
                "positive_label": task.label_values[1], "negative_label": task.label_values[0],
                "sensitive_features": list(A.columns), "libraries": _versions()}
    details = {
        "models": models, "front": front, "bound": settings.bound.model_dump(), "chosen": chosen,
        "chosen_groups": {"model": shown, "intersectional": groups, "marginal": marginal},
        "group_warnings": notes,
        "needs_sensitive_features_at_prediction": sorted(n for n, m in models.items() if m["needs_sensitive_features"]),
        "artefact": artefact,
        "finetune": {k: v for k, v in tuned.items() if k != "tensors"} if tuned else None,
    }
    reports_dir = out / "reports"
    R.plot_front(models, front, metric, bound, chosen, reports_dir / R.PLOT)
    timings["wall_s"] = round(time.perf_counter() - t0, 3)
    report = make_report(R.REPORT, new_run_id(), started, kind="model_stage", policy=policy, protocol=protocol,
                         section=settings.model_dump(mode="json", exclude_defaults=True),
                         inputs=[{"path": str(task_path), "sha256": task_sha},
                                 {"path": str(checkpoint), "sha256": feat["checkpoint_sha256"]}],
                         lineage=[{"role": "input_checkpoint", "path": str(checkpoint), "sha256": feat["checkpoint_sha256"]},
                                  {"role": "task", "path": str(task_path), "sha256": task_sha}],
                         metrics=metrics, checks=R.checks(models, chosen, metric, bound, notes), details=details,
                         plots=[R.PLOT], timings=timings)
    write_report(reports_dir, report)
    return AdaptResult(report, chosen, models, R.trade_off_table(models, metric, chosen))


def _features(checkpoint: Path, task, split, settings: AdaptSettings, out: Path, device):
    """``(X, summary, fine-tune summary or None)``: the checkpoint's pooled features of every row, from an
    encoder whose last blocks were first fine-tuned on the training split when the policy asks for it."""
    from fmaudit.tune.adapt.features import extract_features

    cache = settings.features.cache_dir or out / "feature_cache"
    if not settings.finetune.enabled:
        return (*extract_features(checkpoint, task.texts, settings.features, cache_root=cache, device=device), None)
    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.tune.adapt.finetune import finetune_encoder

    model, tokenizer = load_checkpoint(checkpoint, device=device)
    t0 = time.perf_counter()
    tuned = finetune_encoder(model, tokenizer, [task.texts[i] for i in split.train], task.labels[split.train],
                             settings.features, settings.finetune, settings.seed)
    tuned["fit_s"] = round(time.perf_counter() - t0, 3)
    log.info("fine-tuned %s (%d parameters): loss by epoch %s", tuned["method"], tuned["tuned_parameters"],
             tuned["loss_by_epoch"])
    X, feat = extract_features(checkpoint, task.texts, settings.features, cache_root=cache, model=model,
                               tokenizer=tokenizer, tuned_sha=tuned["tuned_sha256"])
    return X, feat, tuned


def _save_encoder(out: Path, tuned: Optional[dict], settings: AdaptSettings) -> dict:
    """The fine-tuned encoder tensors beside the chosen model; their entry in model.json ({} when frozen)."""
    if tuned is None:
        return {}
    from fmaudit.corpus import sha256_file
    from fmaudit.tune.adapt.finetune import TUNED_FILE, save_tuned

    path = save_tuned(out, tuned["tensors"])
    return {"finetune": {"file": TUNED_FILE, "file_sha256": sha256_file(path), "tuned_sha256": tuned["tuned_sha256"],
                         **settings.finetune.model_dump()}}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("fairlearn", "scikit-learn", "torch", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


class AdaptStage(ModelStage):
    """The ``adapt`` model stage: checkpoint + labelled task -> the chosen fairness-constrained classifier
    (``OUT/model.joblib``) and ``OUT/reports/fairness.json``. Configured by the policy's ``tune: {adapt: ...}``.

    Nothing is trained in the checkpoint, so ``stop_after`` has no effect; a run again into the same ``out``
    reuses the feature cache and fits again (seconds), with the same figures (every seed is a setting).
    """

    name = "adapt"
    Settings = AdaptSettings
    requires = {"fairlearn": "fairness"}
    description = "fairness-constrained classifiers on a checkpoint's pooled hidden states (fairlearn)"

    def run(self, checkpoint: Path, out: Path, *, policy=None, stop_after: Optional[int] = None,
            progress: bool = True, device: Optional[str] = None) -> StageOutput:
        from fmaudit.errors import UsageError
        from fmaudit.tune.adapt.artefact import MODEL_FILE

        if self.settings.task is None:
            raise UsageError("the adapt stage needs a task table: `--task FILE` or tune.adapt.task in the policy")
        if self.settings.columns is None:
            raise UsageError("the adapt stage needs the task's columns: tune.adapt.columns in the policy, e.g. "
                             "{text: text, label: label, sensitive: [gender]}")
        self.preflight(Path(checkpoint))
        result = run_adapt(checkpoint, self.settings, self.settings.task, out, policy=policy, device=device)
        artefact = Path(out) / MODEL_FILE if result.chosen else None
        self.result_ = result
        return StageOutput(Path(out), artefact=artefact, report=result.report)
