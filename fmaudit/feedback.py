"""Feedback functions: fmaudit's scorers behind one import, for application logs and notebooks.

The scorers themselves live in :mod:`fmaudit.scoring` (one module each, registered by name); this module
keeps the names that earlier releases exported here.
"""

from __future__ import annotations

from fmaudit.scoring import (SCORERS, ScoreBatch, Scorer, ScorerSettings, ScorerSpec, make_scorer,
                             parse_scorer_settings, preflight_scorer, register_scorer)
from fmaudit.scoring.cascade import CascadeScorer, CascadeSettings, audit_pick
from fmaudit.scoring.detoxify import DETOXIFY_MODEL_TYPES, DetoxifySettings
from fmaudit.scoring.profanity import ProfanityScorer, ProfanitySettings

__all__ = ["DETOXIFY_MODEL_TYPES", "SCORERS", "CascadeScorer", "CascadeSettings", "DetoxifySettings",
           "ProfanityScorer", "ProfanitySettings", "ScoreBatch", "Scorer", "ScorerSettings", "ScorerSpec", "audit_pick",
           "make_scorer", "parse_scorer_settings", "preflight_scorer", "register_scorer"]
