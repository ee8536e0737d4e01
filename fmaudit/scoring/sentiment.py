"""The ``vader`` scorer: VADER's lexicon and rules for sentiment (Hutto & Gilbert, 2014; the
``vaderSentiment`` package ships its lexicon, so it runs offline and fast).

Labels: ``sentiment`` = (compound + 1) / 2 in [0, 1] (0 most negative, 0.5 neutral, 1 most positive), and
VADER's ``negative``, ``neutral`` and ``positive`` proportions.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Literal, Optional, Sequence

import numpy as np

from fmaudit.scoring import register_scorer
from fmaudit.scoring.base import Scorer, ScorerSettings


class VaderSettings(ScorerSettings):
    """VADER sentiment (lexicon shipped with the package)."""

    name: Literal["vader"] = "vader"


def _package_version() -> str:
    try:
        return version("vaderSentiment")
    except PackageNotFoundError:
        return "unknown"


@register_scorer
class VaderScorer(Scorer):
    name = "vader"
    labels = ("sentiment", "negative", "neutral", "positive")
    version = _package_version()
    Settings = VaderSettings
    requires = {"vaderSentiment": "audit"}

    def __init__(self, settings: Optional[VaderSettings] = None):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.settings = settings or VaderSettings()
        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str], prompts: Optional[Sequence[str]] = None) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for i, text in enumerate(texts):
            s = self._analyzer.polarity_scores(text)
            out[i] = ((s["compound"] + 1) / 2, s["neg"], s["neu"], s["pos"])
        return out
