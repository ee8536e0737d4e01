"""Execution engines for data jobs, chosen by name (``--engine``)."""

from __future__ import annotations

from fmaudit.errors import UsageError
from fmaudit.pipeline.engines.base import Engine

ENGINES = {"local": "fmaudit.pipeline.engines.local:LocalEngine", "ray": "fmaudit.pipeline.engines.ray:RayEngine"}


def make_engine(name: str, workers: int, **options) -> Engine:
    import importlib

    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}")
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)(workers, **options)
