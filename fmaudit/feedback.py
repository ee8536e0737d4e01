"""Feedback functions: fmaudit's scorers behind one import, for application logs and notebooks.

The scorers themselves live in :mod:`fmaudit.scoring` (one module each, registered by name); this module
keeps the names that earlier releases exported here, and gives plain functions from a text (and optional
prompt) to a judgement with a reason: :func:`toxicity`, :func:`pii`, :func:`sentiment` (a
:class:`~fmaudit.scoring.functions.Feedback`) and :func:`refusal` (a :class:`~fmaudit.scoring.refusal.Verdict`).
Batched versions, for logs: :func:`~fmaudit.scoring.functions.feedback_function` (``fmaudit score``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

from fmaudit.scoring import (SCORERS, ScoreBatch, Scorer, ScorerSettings, ScorerSpec, make_scorer,
                             parse_scorer_settings, preflight_scorer, register_scorer)
from fmaudit.scoring.cascade import CascadeScorer, CascadeSettings, audit_pick
from fmaudit.scoring.functions import FUNCTIONS, Feedback, FeedbackFunction, feedback_function
from fmaudit.scoring.detoxify import DETOXIFY_MODEL_TYPES, DetoxifySettings
from fmaudit.scoring.profanity import ProfanityScorer, ProfanitySettings
from fmaudit.scoring.refusal import RefusalScorer, Verdict, classify

__all__ = ["DETOXIFY_MODEL_TYPES", "SCORERS", "CascadeScorer", "CascadeSettings", "DetoxifySettings",
           "ProfanityScorer", "ProfanitySettings", "ScoreBatch", "Scorer", "ScorerSettings", "ScorerSpec", "audit_pick",
           "RefusalScorer", "Verdict", "make_scorer", "parse_scorer_settings", "preflight_scorer", "refusal",
           "register_scorer", "Feedback", "FeedbackFunction", "FUNCTIONS", "feedback_function", "toxicity", "pii",
           "sentiment"]


def refusal(text: str, prompt: Optional[str] = None) -> Verdict:
    """Does ``text`` (the answer to ``prompt``, if given) refuse? A :class:`~fmaudit.scoring.refusal.Verdict`:
    ``label`` (full_refusal, partial_refusal or compliance), ``score`` (P(refusal)), ``evidence`` (matched
    spans) and ``reason`` (the rule that decided)."""
    return classify(text, prompt)


@lru_cache(maxsize=None)
def _default(name: str) -> FeedbackFunction:
    return feedback_function(name)


def toxicity(text: str, prompt: Optional[str] = None) -> Feedback:
    """Is ``text`` toxic? profanity-check's score, label ``toxic`` or ``ok``, and why."""
    return _default("toxicity")(text, prompt)


def pii(text: str, prompt: Optional[str] = None) -> Feedback:
    """Does ``text`` hold PII? presidio's highest finding score, and the entity types found (never the values)."""
    return _default("pii")(text, prompt)


def sentiment(text: str, prompt: Optional[str] = None) -> Feedback:
    """VADER sentiment of ``text``: score (compound + 1) / 2, label positive / neutral / negative."""
    return _default("sentiment")(text, prompt)
