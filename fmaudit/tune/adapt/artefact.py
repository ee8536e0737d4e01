"""The chosen model as a loadable artefact, and the ``predict`` entry point.

``DIR/model.joblib`` holds an :class:`AdaptedModel`: the feature scaler, the fitted
:class:`~fmaudit.tune.adapt.methods.FairClassifier` and the label values. ``DIR/model.json`` holds the checkpoint
reference and its sha256, the feature settings, the columns, and the model file's own sha256, checked before the
model is loaded. joblib, not skops: skops 0.16.0 cannot write fairlearn's mitigators ("no default __reduce__
due to non-trivial __cinit__", tried on ExponentiatedGradient, GridSearch and ThresholdOptimizer); ``model.json``
and the report's ``details.artefact.format`` say so. A joblib file runs code when loaded, so load only artefacts
you made or trust: the sha256 check catches a file changed after it was written, not a folder forged whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

from fmaudit.corpus import sha256_file
from fmaudit.errors import InputError

MODEL_FILE = "model.joblib"
META_FILE = "model.json"
FORMAT = {"library": "joblib", "why_not_skops": "skops 0.16 cannot save fairlearn's ExponentiatedGradient, "
                                                "GridSearch or ThresholdOptimizer ('no default __reduce__ due to "
                                                "non-trivial __cinit__')",
          "trust": "a joblib file runs code when loaded: load only artefacts you made or trust"}


class AdaptedModel(BaseEstimator):
    """Features -> labels: the scaler fitted on the training features, then the chosen classifier."""

    def __init__(self, scaler=None, classifier=None, label_values=("0", "1")) -> None:
        self.scaler = scaler
        self.classifier = classifier
        self.label_values = label_values

    def predict(self, X, sensitive_features=None) -> np.ndarray:
        """0/1 predictions (index into ``label_values``)."""
        return self.classifier.predict(self.scaler.transform(np.asarray(X, dtype=np.float64)),
                                       sensitive_features=sensitive_features)

    @property
    def needs_sensitive_features(self) -> bool:
        return bool(self.classifier.needs_sensitive_features_)


def save_artefact(out: str | os.PathLike, model: AdaptedModel, meta: dict) -> dict:
    """Write the model and its metadata; returns the metadata (with the model file's sha256)."""
    import joblib

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (MODEL_FILE + ".tmp")
    joblib.dump(model, tmp)
    os.replace(tmp, out / MODEL_FILE)
    meta = {**meta, "model_file": MODEL_FILE, "model_sha256": sha256_file(out / MODEL_FILE), "format": FORMAT,
            "needs_sensitive_features": model.needs_sensitive_features}
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def load_artefact(folder: str | os.PathLike) -> tuple[AdaptedModel, dict]:
    """``(model, metadata)`` of an ``fmaudit adapt`` output folder; the model file must match its sha256."""
    import joblib

    folder = Path(folder)
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise InputError(f"{folder}: not an `fmaudit adapt` output (needs {META_FILE} and {MODEL_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{meta_path}: not readable JSON: {e}") from None
    if sha256_file(model_path) != meta.get("model_sha256"):
        raise InputError(f"{model_path}: sha256 differs from the one in {META_FILE}: the model file was changed")
    try:
        model = joblib.load(model_path)
    except Exception as e:  # a damaged file: any unpickling error
        raise InputError(f"{model_path}: cannot load the model: {e}") from None
    if not isinstance(model, AdaptedModel):
        raise InputError(f"{model_path}: holds a {type(model).__name__}, not an fmaudit adapted model")
    return model, meta
