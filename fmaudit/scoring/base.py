"""The scorer contract: a feedback function from texts (and, optionally, the prompts they answer) to scores.

A scorer declares the ``labels`` of its score columns, a ``version`` and its ``Settings`` (part of a
policy: ``{name: detoxify, ...}``); :meth:`Scorer.identity` hashes the three, so a report can say exactly
which scorer produced a figure. Data stages (toxicity) and audits use the same scorers through
:func:`fmaudit.scoring.make_scorer`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Optional, Sequence

from pydantic import Field

from fmaudit.settings import Strict

if TYPE_CHECKING:  # numpy loads with the first scorer that runs, not with every command line
    import numpy as np


class ScorerSettings(Strict):
    """Settings of a scorer; each scorer subclasses this with its own fields (``name`` selects the scorer)."""

    name: str = Field(..., description="Registered scorer name (see `fmaudit policy schema`).")


@dataclass
class ScoreBatch:
    """Scores of a list of texts: ``values[i, j]`` is text i's score for ``labels[j]`` (NaN: not scored);
    ``cleared[i]`` says a cascade's fast scorer cleared text i; ``audited[i]`` that it was scored anyway."""

    values: np.ndarray
    cleared: np.ndarray
    audited: np.ndarray


class Scorer(ABC):
    """Scores texts; ``labels`` names the columns of the scores.

    Subclasses set ``name``, ``labels``, ``version`` and ``Settings``, take their settings in ``__init__``
    (loading any model there) and implement :meth:`score`. ``requires`` names optional packages
    (import name -> fmaudit extra) checked before any work.
    """

    kind: ClassVar[str] = "scorer"
    name: ClassVar[str]
    labels: tuple[str, ...] = ()
    version: ClassVar[str] = "1"
    Settings: ClassVar[type[ScorerSettings]] = ScorerSettings
    requires: ClassVar[dict[str, str]] = {}

    settings: Optional[ScorerSettings] = None

    @classmethod
    def preflight(cls, settings: ScorerSettings) -> tuple[str, ...]:
        """Cheap checks that the scorer can be built offline, without loading its model; returns its labels."""
        return tuple(cls.labels)

    @abstractmethod
    def score(self, texts: Sequence[str], prompts: Optional[Sequence[str]] = None) -> np.ndarray:
        """``(len(texts), len(labels))`` float array of scores in [0, 1]; ``prompts[i]``, when given, is what
        text i answers (scorers that judge a response in context use it)."""

    def score_batch(self, texts: Sequence[str]) -> ScoreBatch:
        import numpy as np

        values = self.score(texts)
        none = np.zeros(len(texts), dtype=bool)
        return ScoreBatch(values, none, none.copy())

    def identity(self) -> str:
        """sha256 of the scorer's name, version and settings: two scores with the same identity are comparable."""
        settings = self.settings.model_dump(mode="json") if self.settings is not None else {}
        blob = json.dumps({"name": self.name, "version": self.version, "settings": settings}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def describe(self) -> dict:
        """What ran, for reports and protocols."""
        return {"name": self.name, "version": self.version, "labels": list(self.labels), "sha256": self.identity()}

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        """The thresholds the caller decides with (a scorer may spend more care near them). Default: unused."""

    def pop_counts(self) -> dict[str, int]:
        """Work counters since the last call (e.g. ``windows`` scored), then reset."""
        counts, self.counts = getattr(self, "counts", {}), {}
        return counts
