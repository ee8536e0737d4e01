"""The models fitted side by side: an unconstrained classifier and fairlearn's mitigations.

Every candidate is a :class:`FairClassifier`: one sklearn-style interface over estimators whose ``fit`` and
``predict`` differ in what they take (``sensitive_features``, ``random_state``). Any sklearn classifier, or any
fairlearn mitigator built on one, can be dropped in: ``FairClassifier(my_estimator, random_state=0)``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np
from fairlearn.adversarial import AdversarialFairnessClassifier
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from fmaudit.errors import PolicyError
from fmaudit.tune.adapt.grid import ZoomGridSearch
from fmaudit.tune.adapt.settings import (ADVERSARIAL_CONSTRAINTS, REDUCTION_CONSTRAINTS, THRESHOLD_CONSTRAINTS,
                                         AdaptSettings)


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class FairClassifier(ClassifierMixin, BaseEstimator):
    """Wraps a binary classifier or fairlearn mitigator behind ``fit(X, y, sensitive_features=None)`` and
    ``predict(X, sensitive_features=None)``.

    Sensitive features are passed to ``fit`` and ``predict`` only when the wrapped method takes them, and
    ``random_state`` to ``predict`` when it takes one (fairlearn's randomized predictions: ExponentiatedGradient's
    mixture, ThresholdOptimizer's interpolated thresholds), so predictions are reproducible. Features are cast to
    float64 (pandas 3 makes ``ThresholdOptimizer.predict`` raise on float32).

    Fitted attributes: ``estimator_``, ``classes_``, ``uses_sensitive_features_`` (at fit time) and
    ``needs_sensitive_features_`` (at prediction time).
    """

    def __init__(self, estimator: Any = None, random_state: int | None = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, X, y, sensitive_features=None) -> "FairClassifier":
        est = clone(self.estimator)
        X = np.asarray(X, dtype=np.float64)
        sensitive_features = _as_groups(sensitive_features)
        self.uses_sensitive_features_ = _accepts(est.fit, "sensitive_features")
        if self.uses_sensitive_features_:
            if sensitive_features is None:
                raise ValueError(f"{type(est).__name__}.fit needs sensitive_features")
            est.fit(X, y, sensitive_features=sensitive_features)
        else:
            est.fit(X, y)
        self.estimator_ = est
        self.classes_ = np.unique(y)
        self.needs_sensitive_features_ = _accepts(est.predict, "sensitive_features")
        return self

    def predict(self, X, sensitive_features=None) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        kwargs: dict[str, Any] = {}
        if self.needs_sensitive_features_:
            if sensitive_features is None:
                raise ValueError(f"{type(self.estimator_).__name__} needs the sensitive features at prediction time")
            kwargs["sensitive_features"] = _as_groups(sensitive_features)
        if _accepts(self.estimator_.predict, "random_state"):
            kwargs["random_state"] = self.random_state
        return np.asarray(self.estimator_.predict(X, **kwargs)).astype(np.int64)


def _as_groups(sensitive_features):
    """Several sensitive columns -> one intersectional group name per row (the adversarial classifier takes one
    column only; the reductions and ThresholdOptimizer form the same intersections themselves)."""
    columns = getattr(sensitive_features, "columns", None)
    if columns is None or len(columns) == 1:
        return sensitive_features if columns is None else sensitive_features[columns[0]].astype(str).to_numpy()
    from fmaudit.tune.adapt.task import intersect

    return intersect(sensitive_features)


def base_estimator(settings: AdaptSettings):
    """The classifier every reduction and post-processor is built on: the policy's own, or logistic regression."""
    if settings.estimator is None:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=settings.C, max_iter=2000)
    module, _, attr = settings.estimator.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise PolicyError(f"tune.adapt.estimator: cannot import {settings.estimator!r}: {e}") from None
    est = cls()
    if settings.seed is not None and "random_state" in est.get_params():
        est.set_params(random_state=settings.seed)
    return est


def build_candidates(settings: AdaptSettings) -> dict[str, FairClassifier]:
    """One :class:`FairClassifier` per method and constraint the policy names, in a stable order."""
    from fairlearn import reductions
    from fairlearn.postprocessing import ThresholdOptimizer

    seed, base = settings.seed, base_estimator(settings)
    out: dict[str, Any] = {"unconstrained": base}
    for c in settings.constraints:
        cls = getattr(reductions, REDUCTION_CONSTRAINTS[c])
        if "exponentiated_gradient" in settings.methods:
            out[f"expgrad_{c}"] = reductions.ExponentiatedGradient(
                clone(base), cls(difference_bound=settings.difference_bound), max_iter=settings.max_iter)
        if "grid_search" in settings.methods:
            out[f"gridsearch_{c}"] = ZoomGridSearch(
                clone(base), cls(difference_bound=settings.difference_bound), grid_size=settings.grid_size,
                grid_limit=settings.grid_limit, zoom_rounds=settings.grid_zoom_rounds)
        if "threshold_optimizer" in settings.methods and c in THRESHOLD_CONSTRAINTS:
            out[f"threshold_{c}"] = ThresholdOptimizer(
                estimator=clone(base), constraints=c, objective="accuracy_score", predict_method="predict_proba")
        if "adversarial" in settings.methods and c in ADVERSARIAL_CONSTRAINTS:
            out[f"adversarial_{c}"] = adversarial(settings, c)
    return {name: FairClassifier(est, random_state=seed) for name, est in out.items()}


class PicklableAdversarialClassifier(AdversarialFairnessClassifier):
    """fairlearn's AdversarialFairnessClassifier whose fitted networks can be saved, byte for byte the same for
    the same fit: fairlearn builds them from a layer list as instances of a class local to a function, which
    pickle cannot name, so after ``fit`` they are replaced by a ``torch.nn.Sequential`` of the same layers (same
    parameters, same forward); and a pickled torch tensor embeds its memory address, so the networks are pickled
    as ``torch.save`` bytes. The optimizers (only ``warm_start`` would use them) are not saved."""

    def __getstate__(self):
        state = dict(self.__dict__)
        engine = state.get("backendEngine_")
        if engine is not None:
            import copy
            import io

            import torch

            engine = copy.copy(engine)
            for attr in ("predictor_model", "adversary_model"):
                buf = io.BytesIO()
                torch.save(getattr(engine, attr), buf)
                setattr(engine, attr, _TorchBytes(buf.getvalue()))
            engine.predictor_optimizer = engine.adversary_optimizer = None
            state["backendEngine_"] = engine
        return state

    def __setstate__(self, state):
        engine = state.get("backendEngine_")
        if engine is not None:
            import io

            import torch

            for attr in ("predictor_model", "adversary_model"):
                blob = getattr(engine, attr)
                if isinstance(blob, _TorchBytes):  # written by fmaudit: a whole module, hence weights_only=False
                    setattr(engine, attr, torch.load(io.BytesIO(blob.data), weights_only=False))
        self.__dict__.update(state)

    def fit(self, X, y, *, sensitive_features=None):
        import torch

        super().fit(X, y, sensitive_features=sensitive_features)
        engine = self.backendEngine_
        for attr in ("predictor_model", "adversary_model"):
            net = getattr(engine, attr)
            if hasattr(net, "layers_"):
                setattr(engine, attr, torch.nn.Sequential(*net.layers_))
        return self


class _TorchBytes:
    """A torch module saved with ``torch.save`` (inside the pickled adversarial classifier)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def adversarial(settings: AdaptSettings, constraint: str):
    """fairlearn's AdversarialFairnessClassifier on the PyTorch backend, trained for the policy's epochs."""
    a = settings.adversarial
    layers = lambda widths: [x for w in widths for x in (w, "leaky_relu")]  # noqa: E731
    return PicklableAdversarialClassifier(
        backend="torch", predictor_model=layers(a.predictor_hidden), adversary_model=layers(a.adversary_hidden),
        constraints=constraint, learning_rate=a.learning_rate, alpha=a.alpha, epochs=a.epochs,
        batch_size=a.batch_size, shuffle=True, random_state=settings.seed)


def method_of(name: str) -> str:
    """The method family of a candidate name (``expgrad_demographic_parity`` -> ``exponentiated_gradient``)."""
    return {"expgrad": "exponentiated_gradient", "gridsearch": "grid_search", "threshold": "threshold_optimizer",
            "adversarial": "adversarial"}.get(name.split("_", 1)[0], name)
