"""``noop``: keeps every document unchanged. For measuring the runner's own overhead, and (with
``sleep_s``) for simulating a slow stage when testing interruption and resumption."""

import time

from pydantic import Field

from fmaudit.corpus import Document
from fmaudit.stages import register
from fmaudit.stages.base import Stage, StageResult, StageSettings
from fmaudit.stats import StageStats


class NoOpSettings(StageSettings):
    sleep_s: float = Field(0.0, ge=0, le=60, description="Sleep this long per batch (simulates a slow stage).")


@register
class NoOp(Stage):
    name = "noop"
    Settings = NoOpSettings
    description = "Keeps every document unchanged (for measuring pipeline overhead)."

    def process(self, docs: list[Document], stats: StageStats) -> StageResult:
        if self.settings.sleep_s:
            time.sleep(self.settings.sleep_s)
        return StageResult(kept=docs)
