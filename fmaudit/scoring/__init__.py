"""Scorers: feedback functions from texts to scores, registered by name and shared by data stages and audits.

- ``detoxify``: the Detoxify classifiers, from a local checkpoint (:mod:`fmaudit.scoring.detoxify`);
- ``profanity-check``: alt-profanity-check's shipped linear model (:mod:`fmaudit.scoring.profanity`);
- ``cascade``: a fast scorer in front of a full one (:mod:`fmaudit.scoring.cascade`);
- ``refusal``: rules that tell a refusal, a partial refusal and compliance apart (:mod:`fmaudit.scoring.refusal`);
- ``vader``: VADER sentiment, its lexicon shipped in the package (:mod:`fmaudit.scoring.sentiment`).

Other packages add scorers with :func:`register_scorer` or the ``fmaudit.scorers`` entry-point group. In a
policy a scorer is written as its settings, ``{name: NAME, ...fields}`` (:data:`ScorerSpec`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, SerializeAsAny

from fmaudit.registry import Registry, check_requires
from fmaudit.scoring.base import ScoreBatch, Scorer, ScorerSettings

__all__ = ["SCORERS", "ScoreBatch", "Scorer", "ScorerSettings", "ScorerSpec", "make_scorer", "parse_scorer_settings",
           "preflight_scorer", "register_scorer"]

SCORERS: Registry[type[Scorer]] = Registry("scorer", group="fmaudit.scorers", builtins={
    "detoxify": "fmaudit.scoring.detoxify",
    "profanity-check": "fmaudit.scoring.profanity",
    "cascade": "fmaudit.scoring.cascade",
    "refusal": "fmaudit.scoring.refusal",
    "vader": "fmaudit.scoring.sentiment",
})

register_scorer = SCORERS.register


def parse_scorer_settings(value: Any) -> ScorerSettings:
    """Scorer settings from a policy mapping ``{name: ..., ...}`` (validated by that scorer's ``Settings``)."""
    if isinstance(value, ScorerSettings):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError("a scorer is a mapping with a 'name' (e.g. {name: profanity-check})")
    try:
        cls = SCORERS.get(value["name"])
    except KeyError as e:
        raise ValueError(str(e)) from None
    return cls.Settings.model_validate(value)


# A policy field holding any registered scorer's settings; serialized with that scorer's own fields.
ScorerSpec = SerializeAsAny[Annotated[ScorerSettings, BeforeValidator(parse_scorer_settings)]]


def preflight_scorer(settings: ScorerSettings | dict) -> tuple[str, ...]:
    """Check, without loading any model, that the scorer can be built offline; returns its labels."""
    settings = parse_scorer_settings(settings)
    cls = SCORERS.get(settings.name)
    check_requires(cls, f"scorer {settings.name!r}")
    return cls.preflight(settings)


def make_scorer(settings: ScorerSettings | dict) -> Scorer:
    """Build (and load) the scorer ``settings`` name; InputError if its model or package cannot be had."""
    settings = parse_scorer_settings(settings)
    cls = SCORERS.get(settings.name)
    check_requires(cls, f"scorer {settings.name!r}")
    return cls(settings)
