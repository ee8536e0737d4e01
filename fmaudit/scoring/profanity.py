"""The ``profanity-check`` scorer: alt-profanity-check's linear model on character and word n-grams, shipped
with the package (offline, fast); one label, ``profanity``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal, Optional, Sequence

import numpy as np

from fmaudit.scoring import register_scorer
from fmaudit.scoring.base import Scorer, ScorerSettings


class ProfanitySettings(ScorerSettings):
    """alt-profanity-check: a linear model on character/word n-grams, shipped with the package."""

    name: Literal["profanity-check"] = "profanity-check"


def _package_version() -> str:
    try:
        return version("alt-profanity-check")
    except PackageNotFoundError:
        return "unknown"


@register_scorer
class ProfanityScorer(Scorer):
    name = "profanity-check"
    labels = ("profanity",)
    version = _package_version()
    Settings = ProfanitySettings

    def __init__(self, settings: Optional[ProfanitySettings] = None):
        from profanity_check import predict_prob  # loads the shipped model (about a second)

        self.settings = settings or ProfanitySettings()
        self._predict = predict_prob

    def score(self, texts: Sequence[str], prompts: Optional[Sequence[str]] = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.asarray(self._predict(list(texts)), dtype=np.float32).reshape(-1, 1)
