"""The ``cascade`` scorer: a fast scorer clears the texts it finds plainly clean; only the rest reach the full
scorer. Rows it cleared are NaN, except a deterministic audit sample that the full scorer also scores, so
the cascade's agreement with the full scorer can be measured."""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import numpy as np
from pydantic import Field

from fmaudit.scoring import ScorerSpec, make_scorer, preflight_scorer, register_scorer
from fmaudit.scoring.base import ScoreBatch, Scorer, ScorerSettings
from fmaudit.scoring.detoxify import DetoxifySettings
from fmaudit.scoring.profanity import ProfanitySettings


class CascadeSettings(ScorerSettings):
    """A fast scorer clears plainly clean texts; the rest (and an audit sample) go to the full scorer."""

    name: Literal["cascade"] = "cascade"
    fast: ScorerSpec = Field(default_factory=ProfanitySettings, description="The fast scorer.")
    full: ScorerSpec = Field(default_factory=DetoxifySettings, description="The full scorer.")
    clear_below: float = Field(0.05, ge=0, le=1, description="Texts whose highest fast score is below this are "
                                                             "cleared without the full scorer.")
    audit_fraction: float = Field(0.05, ge=0, le=1, description="Share of cleared texts also sent to the full "
                                                                "scorer to measure the cascade's agreement.")


def audit_pick(text: str, fraction: float) -> bool:
    """Deterministic choice of about ``fraction`` of texts (by content hash: the same on every worker)."""
    if fraction <= 0:
        return False
    from fmaudit.corpus import id_hash64

    return id_hash64(text) / 2**64 < fraction


@register_scorer
class CascadeScorer(Scorer):
    name = "cascade"
    Settings = CascadeSettings

    def __init__(self, settings: CascadeSettings):
        self.settings = settings
        self.fast = make_scorer(settings.fast)
        self.full = make_scorer(settings.full)
        self.labels = self.full.labels
        self.version = f"{self.fast.name}:{self.fast.version}+{self.full.name}:{self.full.version}"

    @classmethod
    def preflight(cls, settings: CascadeSettings) -> tuple[str, ...]:
        preflight_scorer(settings.fast)
        return preflight_scorer(settings.full)

    def score(self, texts: Sequence[str], prompts: Optional[Sequence[str]] = None) -> np.ndarray:
        return self.score_batch(texts).values

    def score_batch(self, texts: Sequence[str]) -> ScoreBatch:
        fast = self.fast.score(texts)
        cleared = fast.max(axis=1) < self.settings.clear_below if len(texts) else np.zeros(0, dtype=bool)
        audited = cleared & np.array([audit_pick(t, self.settings.audit_fraction) for t in texts], dtype=bool)
        values = np.full((len(texts), len(self.labels)), np.nan, dtype=np.float32)
        todo = np.flatnonzero(~cleared | audited)
        if len(todo):
            values[todo] = self.full.score([texts[i] for i in todo])
        return ScoreBatch(values, cleared, audited)

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        self.full.set_thresholds(thresholds)

    def pop_counts(self) -> dict[str, int]:
        counts = self.fast.pop_counts()
        for k, v in self.full.pop_counts().items():
            counts[k] = counts.get(k, 0) + v
        return counts

    def describe(self) -> dict:
        return {**super().describe(), "fast": self.fast.describe(), "full": self.full.describe(),
                "clear_below": self.settings.clear_below, "audit_fraction": self.settings.audit_fraction}
