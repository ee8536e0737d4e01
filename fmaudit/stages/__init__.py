"""Data stages, registered by name and chosen in the policy.

Built-in stages are imported only when asked for, so naming one does not load the models of all.
Other packages add stages with :func:`register` or through the ``fmaudit.stages`` entry-point group.
"""

from __future__ import annotations

from fmaudit.registry import Registry
from fmaudit.reports.content import Check, ReportContext, StageReport
from fmaudit.settings import StageSettings
from fmaudit.stages.base import Filter, Resources, Stage, StageResult

__all__ = ["Check", "Filter", "ReportContext", "Resources", "Stage", "StageReport", "StageResult", "StageSettings",
           "STAGES", "register", "get_stage", "available_stages"]

STAGES: Registry[type[Stage]] = Registry("stage", group="fmaudit.stages", builtins={
    "noop": "fmaudit.stages.noop",
    "drop_ids": "fmaudit.stages.drop_ids",
    "min_length": "fmaudit.stages.min_length",
    "cda": "fmaudit.stages.cda",
    "pii": "fmaudit.stages.pii",
    "toxicity": "fmaudit.stages.toxicity",
    "dedup_exact": "fmaudit.stages.dedup",
    "dedup_near": "fmaudit.stages.dedup",
})

register = STAGES.register
get_stage = STAGES.get
available_stages = STAGES.names
