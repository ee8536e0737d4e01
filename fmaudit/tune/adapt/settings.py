"""Settings of the ``adapt`` model stage: the policy's ``tune: {adapt: {...}}`` section.

    tune:
      adapt:
        columns: {text: text, label: label, sensitive: [gender, age_band]}
        positive_label: "1"
        constraints: [demographic_parity, equalized_odds]
        bound: {metric: demographic_parity_difference, max: 0.1}

This module imports no torch, sklearn or fairlearn: policy validation loads it.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from fmaudit.settings import Strict
from fmaudit.tune.base import ModelStageSettings
from fmaudit.tune.lora import LoraSettings

# Constraint names the policy may use -> fairlearn.reductions class names.
REDUCTION_CONSTRAINTS = {
    "demographic_parity": "DemographicParity",
    "equalized_odds": "EqualizedOdds",
    "true_positive_rate_parity": "TruePositiveRateParity",
    "false_positive_rate_parity": "FalsePositiveRateParity",
    "error_rate_parity": "ErrorRateParity",
}
# Constraints ThresholdOptimizer and AdversarialFairnessClassifier accept (a subset of the above).
THRESHOLD_CONSTRAINTS = ("demographic_parity", "equalized_odds", "true_positive_rate_parity",
                         "false_positive_rate_parity")
ADVERSARIAL_CONSTRAINTS = ("demographic_parity", "equalized_odds")
DISPARITY_METRICS = ("demographic_parity_difference", "equalized_odds_difference", "true_positive_rate_difference",
                     "false_positive_rate_difference", "error_rate_difference")
METHODS = ("unconstrained", "exponentiated_gradient", "grid_search", "threshold_optimizer", "adversarial")


class Columns(Strict):
    """Which columns of the task table hold the text, the label and the sensitive features."""

    text: str = Field("text", min_length=1, description="Column with the input text.")
    label: str = Field("label", min_length=1, description="Column with the binary label.")
    sensitive: list[str] = Field(..., min_length=1,
                                 description="Sensitive-feature columns; with several, groups are intersectional.")


class Bound(Strict):
    """The disparity bound a model must meet to be chosen (measured on the test split)."""

    metric: Literal[DISPARITY_METRICS] = Field(  # type: ignore[valid-type]
        "demographic_parity_difference", description="Disparity measured between groups (largest minus smallest).")
    max: float = Field(0.1, ge=0, le=1, description="A model qualifies when its disparity is at most this.")


class FeatureSettings(Strict):
    """How texts become features: pooled hidden states of the checkpoint."""

    layer: int = Field(-1, description="Hidden-state layer (-1: the last; 0: the embeddings).")
    pooling: Literal["mean", "last"] = Field("mean", description="Mean over real tokens, or the last real token.")
    max_length: int = Field(128, ge=4, le=8192, description="Tokens kept per text (longer texts are truncated).")
    batch_size: int = Field(32, ge=1, description="Texts per forward pass (sorted by length to cut padding).")
    cache_dir: Optional[str] = Field(None, description="Feature cache folder; null: OUT/feature_cache.")


class AdversarialSettings(Strict):
    """fairlearn's AdversarialFairnessClassifier (PyTorch backend)."""

    predictor_hidden: list[int] = Field([32], description="Hidden layer widths of the predictor network.")
    adversary_hidden: list[int] = Field([8], description="Hidden layer widths of the adversary network.")
    epochs: int = Field(60, ge=1, description="Training epochs (fairlearn's default, 1, is far too few).")
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    alpha: float = Field(10.0, ge=0, description="Weight of the adversary's loss (the fairness pressure; 10 cut the demo task's demographic-parity difference by 70%, 1 by 20%).")


class FinetuneSettings(Strict):
    """Light fine-tuning before the fairlearn models: the encoder's last transformer blocks and a linear head on
    the pooled features, trained on the training split's labels (off by default: frozen features)."""

    blocks: int = Field(0, ge=0, description="Transformer blocks below the feature layer unfrozen and trained, "
                                             "the last ones (0: off; the final norm trains with them when the "
                                             "features are the last layer's).")
    lora: Optional[LoraSettings] = Field(
        None, description="LoRA adapters (peft) on the whole encoder instead of unfrozen blocks (blocks must be "
                          "0), merged into the weights after training; null: no LoRA.")
    epochs: int = Field(3, ge=1, description="Passes over the training split (seeded shuffle).")
    learning_rate: float = Field(1e-4, gt=0, description="AdamW learning rate of the blocks and the head.")
    batch_size: int = Field(16, ge=1)
    weight_decay: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> "FinetuneSettings":
        if self.blocks and self.lora is not None:
            raise ValueError("fine-tune either the last blocks or LoRA adapters: set blocks to 0 with lora")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.blocks) or self.lora is not None


class AdaptSettings(ModelStageSettings):
    """Adapt a checkpoint to a labelled binary task under fairness constraints; choose a model within a bound."""

    columns: Optional[Columns] = Field(None, description="The task's columns (required to run the stage).")
    task: Optional[str] = Field(None, description="The task table (CSV, JSONL or Parquet); `fmaudit adapt --task` "
                                                  "overrides it.")
    positive_label: Optional[str] = Field(
        None, description="Label value counted as positive (compared as text); null: the larger of the two values.")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="Share of rows held out to measure the models.")
    seed: int = Field(0, ge=0, description="Seed of the split, the estimators, randomized predictions and the "
                                           "bootstrap.")
    methods: list[Literal[METHODS]] = Field(  # type: ignore[valid-type]
        list(METHODS), min_length=1, description="Methods fitted side by side (the unconstrained one is always in).")
    constraints: list[Literal[tuple(REDUCTION_CONSTRAINTS)]] = Field(  # type: ignore[valid-type]
        ["demographic_parity", "equalized_odds"], min_length=1,
        description="fairlearn constraints; each reduction and post-processing method is fitted once per constraint "
                    "it supports.")
    difference_bound: float = Field(0.02, gt=0, le=1, description="The reductions' constraint bound (fairlearn's "
                                                                  "difference_bound).")
    grid_size: int = Field(15, ge=2, description="GridSearch: Lagrange multipliers tried per grid.")
    grid_limit: float = Field(2.0, gt=0, description="GridSearch: the first grid spans [-grid_limit, grid_limit].")
    grid_zoom_rounds: int = Field(
        2, ge=0, le=6, description="GridSearch: finer grids of grid_size multipliers, each around the best so far "
                                   "(0: fairlearn's single grid, which on LM features steps over the multipliers "
                                   "that reach parity; see fmaudit/tune/adapt/grid.py).")
    max_iter: int = Field(50, ge=1, description="ExponentiatedGradient: iterations.")
    C: float = Field(1.0, gt=0, description="Inverse L2 strength of the logistic-regression base estimator.")
    estimator: Optional[str] = Field(
        None, description="'package.module:Class' of your own sklearn classifier (needs fit(X, y, sample_weight) and "
                          "predict_proba for the reductions); null: logistic regression.")
    adversarial: AdversarialSettings = Field(default_factory=AdversarialSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    bound: Bound = Field(default_factory=Bound)
    bootstrap: int = Field(200, ge=0, le=10000, description="Bootstrap resamples of the test split for the CIs.")
    min_group_size: int = Field(30, ge=1, description="Groups with fewer test rows get a warning: too small to judge.")
    cpu_threads: Optional[int] = Field(
        None, ge=1, description="Threads for feature extraction and fitting (torch and BLAS); null: the libraries' "
                                "default. 1 is fastest for small models on a busy machine.")

    @field_validator("columns")
    @classmethod
    def _distinct(cls, v: Optional[Columns]) -> Optional[Columns]:
        if v is None:
            return v
        names = [v.text, v.label, *v.sensitive]
        if len(set(names)) != len(names):
            raise ValueError(f"text, label and sensitive columns must be distinct (got {names})")
        return v

    @field_validator("estimator")
    @classmethod
    def _import_path(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and (":" not in v or not all(v.split(":", 1))):
            raise ValueError("give the estimator as 'package.module:Class'")
        return v
