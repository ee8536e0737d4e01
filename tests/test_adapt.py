"""The adapt model stage on real fairlearn calls: a tiny Llama trained on the fly on the demo's biography task
(planted gender disparity), features cached once for the module."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import run_cli

pytest.importorskip("fairlearn")

ROWS = 600
COLUMNS = {"label": "occupation", "sensitive": ["gender"]}


@pytest.fixture(scope="module")
def bios(tmp_path_factory) -> dict:
    """The demo task (600 biographies) and a llama-tiny checkpoint trained 60 steps on its texts."""
    import pandas as pd
    import torch

    from fmaudit.core.tokenizer import train_tokenizer
    from fmaudit.demo.bios import write_bios_task
    from fmaudit.testing.tiny_lm import save_tiny_lm, train_tiny_lm

    root = tmp_path_factory.mktemp("adapt")
    task = write_bios_task(root / "bios.csv", rows=ROWS, seed=0)
    texts = pd.read_csv(task).text.tolist()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tok = train_tokenizer(texts, 400)
        ckpt = save_tiny_lm(train_tiny_lm(texts, tok, steps=60, seed=0), tok, root / "ckpt")
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "task": task, "ckpt": ckpt, "cache": root / "cache"}


def settings(bios, **kw):
    from fmaudit.tune.adapt.settings import AdaptSettings

    base = dict(columns=COLUMNS, positive_label="engineer", cpu_threads=1, bootstrap=50,
                features={"cache_dir": str(bios["cache"])}, constraints=["demographic_parity"],
                bound={"metric": "demographic_parity_difference", "max": 0.2})
    return AdaptSettings(**{**base, **kw})


def write_policy(path: Path, section: dict) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "name": "adapt-test", "tune": {"adapt": section}}))
    return path


def test_constrained_models_halve_the_demographic_parity_difference(bios, tmp_path):
    from fmaudit.tune.adapt.stage import run_adapt

    result = run_adapt(bios["ckpt"], settings(bios), bios["task"], tmp_path / "out")
    models = result.models
    base = models["unconstrained"]
    dp = lambda name: models[name]["disparities"]["demographic_parity_difference"]  # noqa: E731
    assert dp("unconstrained") > 0.25  # the planted disparity (0.7 vs 0.3 engineers) is learned
    assert base["accuracy"] > 0.8
    constrained = ["expgrad_demographic_parity", "gridsearch_demographic_parity", "threshold_demographic_parity",
                   "adversarial_demographic_parity"]
    assert set(models) == {"unconstrained", *constrained}
    for name in constrained:  # every method under DemographicParity halves the planted disparity, at a stated cost
        assert dp(name) <= 0.5 * dp("unconstrained"), (name, dp(name), dp("unconstrained"))
        assert models[name]["disparity_ratio"] == pytest.approx(dp(name) / dp("unconstrained"))
        assert models[name]["accuracy_cost"] == pytest.approx(base["accuracy"] - models[name]["accuracy"])
    assert base["accuracy_cost"] == 0 and "x base" in result.table and "cost" in result.table
    m = result.report["metrics"]
    assert result.chosen != "unconstrained" and result.passed and models[result.chosen]["qualifies"]
    assert m["accuracy_cost"] == pytest.approx(base["accuracy"] - models[result.chosen]["accuracy"])
    assert m["accuracy_cost"] > 0  # fairness costs accuracy on a task whose labels carry the disparity
    report = json.loads((tmp_path / "out" / "reports" / "fairness.json").read_text())
    assert report["kind"] == "model_stage" and report["stage"] == "fairness"
    assert report["details"]["needs_sensitive_features_at_prediction"] == ["threshold_demographic_parity"]
    front = report["details"]["front"]
    lowest = min(models, key=lambda n: (dp(n), -models[n]["accuracy"]))
    assert set(front) <= set(models) and lowest == front[0]
    for a in front:  # no model beats a front model on both axes
        assert not any(models[b]["accuracy"] > models[a]["accuracy"] and dp(b) < dp(a) for b in models)
    lo, hi = base["disparities_ci"]["demographic_parity_difference"]
    assert lo <= dp("unconstrained") <= hi
    assert (tmp_path / "out" / "reports" / "fairness_front.png").stat().st_size > 1000
    meta = json.loads((tmp_path / "out" / "model.json").read_text())
    from fmaudit.core.checkpoint import checkpoint_sha256

    assert meta["checkpoint_sha256"] == checkpoint_sha256(bios["ckpt"]) and meta["model"] == result.chosen
    assert meta["format"]["library"] == "joblib" and "skops" in meta["format"]["why_not_skops"]
    assert report["details"]["artefact"]["format"] == meta["format"]


def test_predict_entry_point_reproduces_the_test_accuracy(bios, tmp_path, capsys):
    """`fmaudit adapt predict` on the test rows gives the accuracy the report states for the chosen model."""
    from fmaudit.tune.adapt.stage import run_adapt
    from fmaudit.tune.adapt.task import load_task, split_task

    s = settings(bios, methods=["unconstrained", "exponentiated_gradient"])
    result = run_adapt(bios["ckpt"], s, bios["task"], tmp_path / "out")
    task = load_task(bios["task"], s.columns, s.positive_label)
    split = split_task(task, s.test_fraction, s.seed)
    rows = list(csv.DictReader(open(bios["task"], encoding="utf-8")))
    test_csv = tmp_path / "test.csv"
    with open(test_csv, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text"])  # no sensitive column: expgrad does not need it
        w.writeheader()
        w.writerows({"text": rows[i]["text"]} for i in split.test)
    assert run_cli("adapt", "predict", tmp_path / "out", test_csv) == 0
    preds = [json.loads(line)["prediction"] for line in capsys.readouterr().out.splitlines()]
    truth = [rows[i]["occupation"] for i in split.test]
    accuracy = np.mean([p == t for p, t in zip(preds, truth)])
    assert accuracy == pytest.approx(result.models[result.chosen]["accuracy"])


def test_threshold_optimizer_artefact_needs_the_sensitive_column(bios, tmp_path, capsys):
    """Through the registered model stage: StageOutput, lineage; the artefact needs the sensitive column."""
    from fmaudit.core.checkpoint import checkpoint_sha256
    from fmaudit.tune import MODEL_STAGES

    s = settings(bios, methods=["unconstrained", "threshold_optimizer"], task=str(bios["task"]))
    stage = MODEL_STAGES.get("adapt")(s)
    output = stage.run(bios["ckpt"], tmp_path / "out")
    assert stage.result_.chosen == "threshold_demographic_parity" and not output.failed_checks
    assert output.artefact == tmp_path / "out" / "model.joblib" and output.artefact.is_file()
    assert output.report["lineage"][0] == {"role": "input_checkpoint", "path": str(bios["ckpt"]),
                                           "sha256": checkpoint_sha256(bios["ckpt"])}
    text_only = tmp_path / "text.csv"
    text_only.write_text("text\nShe is 30 years old and works in Cork.\n")
    assert run_cli("adapt", "predict", tmp_path / "out", text_only) == 2
    err = capsys.readouterr().err
    assert str(text_only) in err and "'gender'" in err
    assert run_cli("adapt", "predict", tmp_path / "out", bios["task"], "--out", tmp_path / "p.jsonl") == 0
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == ROWS


def test_intersectional_groups(bios, tmp_path):
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    from fmaudit.tune.adapt.metrics import summary
    from fmaudit.tune.adapt.stage import run_adapt
    from fmaudit.tune.adapt.task import intersect, load_task

    cols = {"label": "occupation", "sensitive": ["gender", "age_band"]}
    s = settings(bios, columns=cols, methods=["unconstrained", "exponentiated_gradient"], bound={"max": 0.5})
    result = run_adapt(bios["ckpt"], s, bios["task"], tmp_path / "out")
    groups = result.report["details"]["chosen_groups"]
    names = sorted(r["group"] for r in groups["intersectional"])
    assert names == ["female & 40_plus", "female & under_40", "male & 40_plus", "male & under_40"]
    assert {r["gender"] for r in groups["intersectional"]} == {"female", "male"}
    assert sum(r["count"] for r in groups["intersectional"]) == result.report["metrics"]["test_rows"]
    assert set(groups["marginal"]) == {"gender", "age_band"}
    assert [r["group"] for r in groups["marginal"]["gender"]] == ["female", "male"]
    # the disparities over intersectional groups are fairlearn's, computed on both sensitive columns at once
    task = load_task(bios["task"], s.columns, s.positive_label)
    rng = np.random.default_rng(1)
    pred = rng.integers(0, 2, len(task))
    mine = summary(task.labels, pred, intersect(task.sensitive), n_boot=0)["disparities"]
    assert mine["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(task.labels, pred, sensitive_features=task.sensitive))
    assert mine["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(task.labels, pred, sensitive_features=task.sensitive))


def test_small_groups_are_warned_about(bios, tmp_path):
    from fmaudit.tune.adapt.stage import run_adapt

    s = settings(bios, columns={"label": "occupation", "sensitive": ["gender", "age_band"]},
                 methods=["unconstrained"], bound={"max": 1.0}, min_group_size=60)
    report = run_adapt(bios["ckpt"], s, bios["task"], tmp_path / "out").report
    warnings = report["details"]["group_warnings"]
    assert warnings and all("too few to judge" in w for w in warnings)
    check = next(c for c in report["checks"] if c["name"] == "groups_large_enough")
    assert not check["passed"] and check["severity"] == "warning"


def test_check_fails_when_the_bound_is_unreachable(bios, tmp_path, capsys):
    section = {"columns": COLUMNS, "positive_label": "engineer", "methods": ["unconstrained"], "bootstrap": 20,
               "cpu_threads": 1, "features": {"cache_dir": str(bios["cache"])}, "bound": {"max": 0.05},
               "task": str(bios["task"])}  # the task named in the policy, no --task
    policy = write_policy(tmp_path / "p.yaml", section)
    out = tmp_path / "out"
    assert run_cli("adapt", bios["ckpt"], "--policy", policy, "--out", out) == 1
    assert "no model has demographic_parity_difference <= 0.05" in capsys.readouterr().out
    assert not (out / "model.joblib").exists()
    report = json.loads((out / "reports" / "fairness.json").read_text())
    check = next(c for c in report["checks"] if c["name"] == "model_within_disparity_bound")
    assert not check["passed"] and check["value"] > 0.05 and len(check["ci"]) == 2
    assert report["details"]["chosen"] is None


def _bad_task(tmp_path: Path, bios, edit) -> Path:
    rows = list(csv.DictReader(open(bios["task"], encoding="utf-8")))[:200]
    edit(rows)
    path = tmp_path / "bad.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _one_class(rows):
    for r in rows:
        r["occupation"] = "teacher"


def _lonely_group(rows):
    rows[5]["gender"] = "nonbinary"


@pytest.mark.parametrize("case, edit, columns, expected", [
    ("missing sensitive column", lambda rows: None, {"label": "occupation", "sensitive": ["ethnicity"]},
     "column 'ethnicity'"),
    ("one-class label", _one_class, COLUMNS, "column 'occupation': the label has one class"),
    ("group empty in test split", _lonely_group, COLUMNS, "column 'gender': group 'nonbinary' has no members in the "
                                                          "test split"),
])
def test_bad_input_exits_2_naming_file_and_column(bios, tmp_path, capsys, case, edit, columns, expected):
    task = _bad_task(tmp_path, bios, edit)
    policy = write_policy(tmp_path / "p.yaml", {"columns": columns, "positive_label": "engineer" if case != "one-class label" else None, "cpu_threads": 1,
                                                "features": {"cache_dir": str(bios["cache"])}})
    assert run_cli("adapt", bios["ckpt"], "--policy", policy, "--task", task, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert str(task) in err and expected in err, err
    assert not (tmp_path / "out" / "reports").exists()


def test_policy_errors_exit_2(bios, tmp_path, capsys):
    no_section = tmp_path / "none.yaml"
    no_section.write_text(yaml.safe_dump({"version": 1, "name": "x"}))
    assert run_cli("adapt", bios["ckpt"], "--policy", no_section, "--task", bios["task"], "--out", tmp_path / "o") == 2
    assert "no tune: {adapt: ...} section" in capsys.readouterr().err
    bad = write_policy(tmp_path / "bad.yaml", {"columns": COLUMNS, "constraints": ["parity_of_vibes"]})
    assert run_cli("adapt", bios["ckpt"], "--policy", bad, "--task", bios["task"], "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "bad.yaml:" in err and "tune.adapt.constraints" in err
    assert run_cli("adapt", bios["ckpt"], "--task", bios["task"]) == 2  # usage: --policy and --out missing
    no_task = write_policy(tmp_path / "nt.yaml", {"columns": COLUMNS})
    assert run_cli("adapt", bios["ckpt"], "--policy", no_task, "--out", tmp_path / "o") == 2
    assert "needs a task table" in capsys.readouterr().err
    # the generic `fmaudit tune NAME` runs it too; without a policy it says what is missing (exit 2, not a crash)
    assert run_cli("tune", "adapt", bios["ckpt"], "--out", tmp_path / "o") == 2
    assert "needs a task table" in capsys.readouterr().err


def test_features_are_cached_and_batching_changes_nothing(bios, tmp_path):
    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.tune.adapt.features import extract_features
    from fmaudit.tune.adapt.settings import FeatureSettings

    texts = [r["text"] for r in csv.DictReader(open(bios["task"], encoding="utf-8"))][:40]
    model, tok = load_checkpoint(bios["ckpt"])
    one, info = extract_features(bios["ckpt"], texts, FeatureSettings(batch_size=1), None, model, tok)
    batched, _ = extract_features(bios["ckpt"], texts, FeatureSettings(batch_size=16), tmp_path, model, tok)
    np.testing.assert_allclose(one, batched, atol=1e-5)
    assert info["computed"] == 40 and one.dtype == np.float64
    again, info = extract_features(bios["ckpt"], texts[::-1], FeatureSettings(batch_size=16), tmp_path)
    assert info["cache_hits"] == 40 and info["computed"] == 0
    np.testing.assert_array_equal(again, batched[::-1])
    last, _ = extract_features(bios["ckpt"], texts, FeatureSettings(pooling="last"), tmp_path, model, tok)
    assert not np.allclose(last, batched)  # another setting, another cache key


def test_user_estimator_drops_in(bios, tmp_path):
    """Any sklearn classifier, wrapped or named in the policy, is fitted and measured beside the others."""
    from sklearn.linear_model import RidgeClassifier

    from fmaudit.tune.adapt.methods import FairClassifier
    from fmaudit.tune.adapt.stage import run_adapt

    mine = FairClassifier(RidgeClassifier(alpha=10.0), random_state=0)
    result = run_adapt(bios["ckpt"], settings(bios, bound={"max": 1.0}), bios["task"], tmp_path / "a",
                       candidates={"ridge": mine})
    assert set(result.models) == {"unconstrained", "ridge"} and result.models["ridge"]["accuracy"] > 0.7
    s = settings(bios, estimator="sklearn.linear_model:SGDClassifier", methods=["unconstrained", "grid_search"],
                 bound={"max": 1.0})
    result = run_adapt(bios["ckpt"], s, bios["task"], tmp_path / "b")
    assert set(result.models) == {"unconstrained", "gridsearch_demographic_parity"}


def test_same_inputs_give_the_same_artefact_bytes(bios, tmp_path):
    """The adversarial classifier is saved without the memory addresses plain tensor pickles embed; reloaded, it
    predicts."""
    from fmaudit.tune.adapt.predict import predict_rows
    from fmaudit.tune.adapt.stage import run_adapt

    s = settings(bios, methods=["unconstrained", "adversarial"], bootstrap=0)
    chosen = {run_adapt(bios["ckpt"], s, bios["task"], tmp_path / d).chosen for d in ("a", "b")}
    assert chosen == {"adversarial_demographic_parity"}
    for name in ("model.joblib", "model.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    labels = {r["prediction"] for r in predict_rows(tmp_path / "a", bios["task"])}
    assert labels == {"engineer", "teacher"}


def test_zoomed_grid_search_extends_fairlearns_grid(bios):
    """ZoomGridSearch with no zoom round is fairlearn's GridSearch; each round adds grid_size fits around the best
    multiplier, and the choice over all fits is never worse on fairlearn's own training loss."""
    from fairlearn.reductions import DemographicParity, GridSearch
    from sklearn.linear_model import LogisticRegression

    from fmaudit.tune.adapt.features import extract_features
    from fmaudit.tune.adapt.grid import ZoomGridSearch
    from fmaudit.tune.adapt.task import load_task

    s = settings(bios)
    task = load_task(bios["task"], s.columns, s.positive_label)
    X, _ = extract_features(bios["ckpt"], task.texts, s.features, cache_root=bios["cache"])
    X = (X - X.mean(0)) / X.std(0)
    y, A = task.labels, task.groups

    def loss(g):
        return min((1 - g.constraint_weight) * o + g.constraint_weight * g.gammas_[c].max()
                   for o, c in zip(g.objectives_, g.gammas_.columns))

    def fit(cls, **kw):
        return cls(LogisticRegression(max_iter=2000), DemographicParity(), grid_size=7, **kw).fit(
            X, y, sensitive_features=A)

    plain, zero, zoomed = fit(GridSearch), fit(ZoomGridSearch, zoom_rounds=0), fit(ZoomGridSearch, zoom_rounds=2)
    np.testing.assert_array_equal(plain.predict(X), zero.predict(X))
    assert zero.best_idx_ == plain.best_idx_ and len(zero.predictors_) == 7
    assert len(zoomed.predictors_) == len(zoomed.objectives_) == zoomed.lambda_vecs_.shape[1] == 21
    assert zoomed.zoom_radii_[1] < zoomed.zoom_radii_[0]  # each round looks closer
    best = zoomed.best_idx_
    assert loss(zoomed) <= loss(plain) and loss(zoomed) == pytest.approx(
        (1 - zoomed.constraint_weight) * zoomed.objectives_[best]
        + zoomed.constraint_weight * zoomed.gammas_.iloc[:, best].max())
    np.testing.assert_array_equal(zoomed.predict(X), zoomed.predictors_[best].predict(X))


def test_finetuning_the_last_block_changes_the_features_and_stays_deterministic(bios, tmp_path):
    """finetune.blocks=1: the last block and the final norm train with a linear head on the training split; the
    features move, two runs give the same bytes, and `predict` applies the tuned tensors to the checkpoint."""
    from safetensors.torch import load_file

    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.errors import PolicyError
    from fmaudit.tune.adapt.features import extract_features
    from fmaudit.tune.adapt.finetune import apply_tuned
    from fmaudit.tune.adapt.predict import predict_rows
    from fmaudit.tune.adapt.stage import run_adapt
    from fmaudit.tune.adapt.task import load_task, split_task

    s = settings(bios, methods=["unconstrained"], bound={"max": 1.0}, bootstrap=0,
                 finetune={"blocks": 1, "epochs": 2, "learning_rate": 1e-3})
    a, b = (run_adapt(bios["ckpt"], s, bios["task"], tmp_path / d) for d in ("a", "b"))
    tuned = a.report["details"]["finetune"]
    assert tuned["loss_by_epoch"][1] < tuned["loss_by_epoch"][0] and tuned["blocks"] == 1
    assert a.report["protocol"]["finetune"]["blocks"] == 1 and a.report["metrics"]["finetuned_blocks"] == 1
    for name in ("model.joblib", "model.json", "encoder_finetune.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert b.report["metrics"]["features_computed"] == 0  # same tuned tensors, same cache key: all hits
    names = sorted(load_file(str(tmp_path / "a" / "encoder_finetune.safetensors")))
    assert names and all(n.startswith("model.layers.1.") or n == "model.norm.weight" for n in names)
    assert "model.norm.weight" in names and len(names) == tuned["tuned_tensors"]
    texts = load_task(bios["task"], s.columns, s.positive_label).texts[:20]
    model, tok = load_checkpoint(bios["ckpt"])
    frozen, _ = extract_features(bios["ckpt"], texts, s.features, None, model, tok)
    apply_tuned(model, tmp_path / "a" / "encoder_finetune.safetensors", tuned["tuned_sha256"])
    moved, _ = extract_features(bios["ckpt"], texts, s.features, None, model, tok, tuned_sha=tuned["tuned_sha256"])
    assert np.abs(moved - frozen).max() > 1e-3
    task = load_task(bios["task"], s.columns, s.positive_label)
    test = split_task(task, s.test_fraction, s.seed).test
    preds = [r["prediction"] for r in predict_rows(tmp_path / "a", bios["task"])]
    truth = task.labels[test]
    accuracy = np.mean([(preds[i] == "engineer") == bool(t) for i, t in zip(test, truth)])
    assert accuracy == pytest.approx(a.models["unconstrained"]["accuracy"])
    with pytest.raises(PolicyError, match="finetune.blocks: 3 blocks are asked for"):
        run_adapt(bios["ckpt"], s.model_copy(update={"finetune": s.finetune.model_copy(update={"blocks": 3})}),
                  bios["task"], tmp_path / "c")


def test_lora_finetune_merges_adapters_into_the_saved_encoder(bios, tmp_path):
    """finetune.lora: peft adapters on q_proj/v_proj train with the head, are merged, and the merged weights are
    what the artefact saves and `predict` applies (same accuracy as the report's)."""
    pytest.importorskip("peft")
    from pydantic import ValidationError
    from safetensors.torch import load_file

    from fmaudit.tune.adapt.predict import predict_rows
    from fmaudit.tune.adapt.settings import FinetuneSettings
    from fmaudit.tune.adapt.stage import run_adapt
    from fmaudit.tune.adapt.task import load_task, split_task

    with pytest.raises(ValidationError, match="either the last blocks or LoRA"):
        FinetuneSettings(blocks=1, lora={"r": 4})
    s = settings(bios, methods=["unconstrained"], bound={"max": 1.0}, bootstrap=0,
                 finetune={"lora": {"r": 4}, "epochs": 1, "learning_rate": 1e-3})
    result = run_adapt(bios["ckpt"], s, bios["task"], tmp_path / "a")
    tuned = result.report["details"]["finetune"]
    assert tuned["method"] == "lora" and tuned["tuned_parameters"] < tuned["saved_parameters"]
    assert result.report["metrics"]["feature_cache_hits"] == 0  # another encoder: no frozen feature is reused
    names = sorted(load_file(str(tmp_path / "a" / "encoder_finetune.safetensors")))
    assert names and all(n.endswith(("q_proj.weight", "v_proj.weight")) for n in names)
    task = load_task(bios["task"], s.columns, s.positive_label)
    test = split_task(task, s.test_fraction, s.seed).test
    preds = [r["prediction"] for r in predict_rows(tmp_path / "a", bios["task"])]
    accuracy = np.mean([(preds[i] == "engineer") == bool(task.labels[i]) for i in test])
    assert accuracy == pytest.approx(result.models["unconstrained"]["accuracy"])
