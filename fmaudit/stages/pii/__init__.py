"""The ``pii`` data stage (its settings and report beside it)."""

from fmaudit.stages.pii.settings import PiiSettings
from fmaudit.stages.pii.stage import PiiStage

__all__ = ["PiiSettings", "PiiStage"]
