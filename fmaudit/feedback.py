"""Feedback functions: fmaudit's scorers behind one import, for application logs and notebooks.

The scorers themselves live in :mod:`fmaudit.scoring` (one module each, registered by name); this module
keeps the names that earlier releases exported here.
"""

from __future__ import annotations

from typing import Optional

from fmaudit.scoring import (SCORERS, ScoreBatch, Scorer, ScorerSettings, ScorerSpec, make_scorer,
                             parse_scorer_settings, preflight_scorer, register_scorer)
from fmaudit.scoring.cascade import CascadeScorer, CascadeSettings, audit_pick
from fmaudit.scoring.detoxify import DETOXIFY_MODEL_TYPES, DetoxifySettings
from fmaudit.scoring.profanity import ProfanityScorer, ProfanitySettings
from fmaudit.scoring.refusal import RefusalScorer, Verdict, classify

__all__ = ["DETOXIFY_MODEL_TYPES", "SCORERS", "CascadeScorer", "CascadeSettings", "DetoxifySettings",
           "ProfanityScorer", "ProfanitySettings", "ScoreBatch", "Scorer", "ScorerSettings", "ScorerSpec", "audit_pick",
           "RefusalScorer", "Verdict", "make_scorer", "parse_scorer_settings", "preflight_scorer", "refusal",
           "register_scorer"]


def refusal(text: str, prompt: Optional[str] = None) -> Verdict:
    """Does ``text`` (the answer to ``prompt``, if given) refuse? A :class:`~fmaudit.scoring.refusal.Verdict`:
    ``label`` (full_refusal, partial_refusal or compliance), ``score`` (P(refusal)), ``evidence`` (matched
    spans) and ``reason`` (the rule that decided)."""
    return classify(text, prompt)
