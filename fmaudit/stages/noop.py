"""``noop``: keeps every document unchanged. For measuring the runner's own overhead."""

from fmaudit.corpus import Document
from fmaudit.stages import register
from fmaudit.stages.base import Stage, StageResult
from fmaudit.stats import StageStats


@register
class NoOp(Stage):
    name = "noop"
    description = "Keeps every document unchanged (for measuring pipeline overhead)."

    def process(self, docs: list[Document], stats: StageStats) -> StageResult:
        return StageResult(kept=docs)
