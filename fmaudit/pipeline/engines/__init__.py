"""Execution engines for data jobs, registered by name (``--engine``); plug-ins use the ``fmaudit.engines``
entry-point group."""

from __future__ import annotations

from fmaudit.errors import UsageError
from fmaudit.pipeline.engines.base import Engine
from fmaudit.registry import Registry

ENGINES: Registry[type[Engine]] = Registry("engine", group="fmaudit.engines", builtins={
    "local": "fmaudit.pipeline.engines.local:LocalEngine",
    "ray": "fmaudit.pipeline.engines.ray:RayEngine",
})


def make_engine(name: str, workers: int, **options) -> Engine:
    """The engine ``name`` with ``workers`` workers; UsageError listing the engines for an unknown name."""
    try:
        cls = ENGINES.get(name)
    except KeyError as e:
        raise UsageError(str(e)) from None
    return cls(workers, **options)
