"""Feedback functions: one judgement per text (and optional prompt) as a score with a label and a reason,
for application logs (``fmaudit score --feedback NAMES FILE``) and notebooks (``fmaudit.feedback``).

- ``toxicity``: a toxicity scorer (``profanity-check`` by default, any registered scorer by its settings);
  reason: the highest label and its score against the threshold;
- ``pii``: presidio over the text (the entity types reports are scrubbed of); score: the highest finding
  score; reason: the entity types and counts found, never the values;
- ``refusal``: the rule-based refusal classifier; label full_refusal / partial_refusal / compliance and the
  rule that decided;
- ``sentiment``: VADER; score (compound + 1) / 2; label positive / neutral / negative at VADER's usual
  compound cut-offs of +-0.05.

Each function is batched (``fn.batch(texts, prompts)``) and says whether a result is ``flagged`` (toxic, holds
PII, refused, negative), which is what ``fmaudit score`` counts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import asdict, dataclass
from typing import ClassVar, Optional, Sequence

from fmaudit.errors import InputError


@dataclass(frozen=True)
class Feedback:
    """One text's judgement: ``score`` in [0, 1], a ``label``, a human-readable ``reason`` and whether it is
    ``flagged``."""

    score: float
    label: str
    reason: str
    flagged: bool

    def as_dict(self) -> dict:
        return asdict(self)


class FeedbackFunction(ABC):
    """A batched feedback function; ``describe()`` says what ran (scorer name, version, hash)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def batch(self, texts: Sequence[str], prompts: Optional[Sequence[Optional[str]]] = None) -> list[Feedback]:
        """One :class:`Feedback` per text (``prompts[i]``, when given, is what text i answers)."""

    def __call__(self, text: str, prompt: Optional[str] = None) -> Feedback:
        return self.batch([text], None if prompt is None else [prompt])[0]

    def describe(self) -> dict:
        return {"name": self.name}


class Toxicity(FeedbackFunction):
    name = "toxicity"
    description = "toxicity scorer (profanity-check by default)"

    def __init__(self, scorer=None, threshold: float = 0.5):
        from fmaudit.scoring import make_scorer

        self.scorer = make_scorer(scorer or {"name": "profanity-check"})
        self.threshold = threshold

    def batch(self, texts, prompts=None) -> list[Feedback]:
        import numpy as np  # here: the CLI imports this module to list the functions

        values = np.nan_to_num(np.asarray(self.scorer.score(list(texts)), dtype=float)) if texts else np.zeros((0, 1))
        out = []
        for row in values:
            j = int(np.argmax(row))
            score, label = float(row[j]), self.scorer.labels[j]
            flagged = score >= self.threshold
            out.append(Feedback(round(score, 6), "toxic" if flagged else "ok",
                                f"{self.scorer.name} {label}={score:.3f} ({'>=' if flagged else '<'} {self.threshold})",
                                flagged))
        return out

    def describe(self) -> dict:
        return {"name": self.name, "threshold": self.threshold, "scorer": self.scorer.describe()}


class Pii(FeedbackFunction):
    name = "pii"
    description = "presidio findings (types and counts only)"

    def __init__(self, threshold: Optional[float] = None):
        from fmaudit.text.scrub import SCRUB_ENTITIES, SCRUB_THRESHOLD

        self.entities = list(SCRUB_ENTITIES)
        threshold = SCRUB_THRESHOLD if threshold is None else threshold
        self.threshold = threshold

    def batch(self, texts, prompts=None) -> list[Feedback]:
        from fmaudit.text.scrub import _analyzer

        analyzer = _analyzer()
        out = []
        for text in texts:
            found = analyzer.analyze(text=text, language="en", entities=self.entities,
                                     score_threshold=self.threshold) if text.strip() else []
            if not found:
                out.append(Feedback(0.0, "none", "no PII found", False))
                continue
            kinds = Counter(r.entity_type for r in found)
            reason = "found " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))
            out.append(Feedback(round(max(r.score for r in found), 6), "pii", reason, True))
        return out

    def describe(self) -> dict:
        from importlib.metadata import version

        return {"name": self.name, "entities": self.entities, "threshold": self.threshold,
                "presidio": version("presidio-analyzer")}


class Refusal(FeedbackFunction):
    name = "refusal"
    description = "rule-based refusal classifier"

    def __init__(self):
        from fmaudit.scoring import make_scorer

        self.scorer = make_scorer({"name": "refusal"})

    def batch(self, texts, prompts=None) -> list[Feedback]:
        return [Feedback(round(float(v.score), 6), v.label, v.reason, v.refused)
                for v in self.scorer.verdicts(list(texts), None if prompts is None else list(prompts))]

    def describe(self) -> dict:
        return {"name": self.name, "scorer": self.scorer.describe()}


class Sentiment(FeedbackFunction):
    name = "sentiment"
    description = "VADER sentiment"
    CUT = 0.05  # VADER's documented cut-off of the compound score for positive / negative

    def __init__(self):
        from fmaudit.scoring import make_scorer

        self.scorer = make_scorer({"name": "vader"})

    def batch(self, texts, prompts=None) -> list[Feedback]:
        out = []
        for row in (self.scorer.score(list(texts)) if texts else []):
            compound = 2 * float(row[0]) - 1
            label = "positive" if compound >= self.CUT else "negative" if compound <= -self.CUT else "neutral"
            out.append(Feedback(round(float(row[0]), 6), label, f"VADER compound {compound:+.3f}", label == "negative"))
        return out

    def describe(self) -> dict:
        return {"name": self.name, "scorer": self.scorer.describe()}


FUNCTIONS: dict[str, type[FeedbackFunction]] = {f.name: f for f in (Toxicity, Pii, Refusal, Sentiment)}


def feedback_function(name: str, **settings) -> FeedbackFunction:
    """The feedback function ``name`` (InputError listing the names for an unknown one)."""
    if name not in FUNCTIONS:
        raise InputError(f"unknown feedback function {name!r}; available: {', '.join(sorted(FUNCTIONS))}")
    return FUNCTIONS[name](**settings)
