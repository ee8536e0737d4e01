"""The ``cda`` data stage (its settings and report beside it)."""

from fmaudit.stages.cda.settings import AxisSettings, CdaSettings
from fmaudit.stages.cda.stage import Cda, substitute_draw, swapper_from_settings

__all__ = ["AxisSettings", "Cda", "CdaSettings", "substitute_draw", "swapper_from_settings"]
