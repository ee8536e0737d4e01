"""Data stages, registered by name and chosen in the policy.

Built-in stages are imported only when asked for, so naming one does not load the models of all.
Other packages add stages with :func:`register` or through the ``fmaudit.stages`` entry-point group.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from fmaudit.stages.base import Check, Filter, ReportContext, Resources, Stage, StageReport, StageResult, StageSettings

__all__ = ["Check", "Filter", "ReportContext", "Resources", "Stage", "StageReport", "StageResult", "StageSettings",
           "register", "get_stage", "available_stages"]

# name -> module that defines (and registers) it
BUILTIN = {
    "noop": "fmaudit.stages.noop",
    "min_length": "fmaudit.stages.min_length",
    "cda": "fmaudit.stages.cda",
    "pii": "fmaudit.stages.pii",
    "toxicity": "fmaudit.stages.toxicity",
}

_REGISTRY: dict[str, type[Stage]] = {}


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make a stage available to policies under ``cls.name``."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"stage name {cls.name!r} is already registered by {existing.__module__}")
    _REGISTRY[cls.name] = cls
    return cls


def available_stages() -> list[str]:
    names = set(BUILTIN) | set(_REGISTRY)
    names |= {ep.name for ep in entry_points(group="fmaudit.stages")}
    return sorted(names)


def get_stage(name: str) -> type[Stage]:
    """The stage class registered as ``name``; KeyError naming the known stages if there is none."""
    if name not in _REGISTRY:
        if name in BUILTIN:
            importlib.import_module(BUILTIN[name])
        else:
            for ep in entry_points(group="fmaudit.stages"):
                if ep.name == name:
                    register(ep.load())
    if name not in _REGISTRY:
        raise KeyError(f"unknown stage {name!r}; known stages: {', '.join(available_stages())}")
    return _REGISTRY[name]
