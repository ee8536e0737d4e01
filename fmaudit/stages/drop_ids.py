"""``drop_ids``: drop the documents a list names (reason ``drop_list``, or the policy's own), for example the
training documents ``fmaudit remediate`` traced behind a failed audit check. A policy change, not a hand edit:
the list and its reason are in the policy, so the data run's report says what was removed and why."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, model_validator

from fmaudit.corpus import Document
from fmaudit.reports.content import Check, ReportContext, StageReport
from fmaudit.settings import StageSettings
from fmaudit.stages import register
from fmaudit.stages.base import Filter
from fmaudit.stats import StageStats


class DropIdsSettings(StageSettings):
    ids: list[str] = Field(default_factory=list, description="Document ids to drop.")
    ids_file: Optional[Path] = Field(None, description="A file of ids to drop, one per line ('#' comments).")
    reason: str = Field("drop_list", min_length=1, max_length=80, description="Drop reason recorded for each.")
    why: str = Field("", description="Why these documents go (e.g. the audit check a trace found them behind).")
    expect_all: bool = Field(True, description="Check: every listed id was found in the corpus (a list that no "
                                               "longer matches the data is stale).")

    @model_validator(mode="after")
    def _some_ids(self) -> "DropIdsSettings":
        if self.ids_file is not None and not self.ids_file.is_file():
            raise ValueError(f"ids_file {self.ids_file} is not a file")
        if not self.ids and self.ids_file is None:
            raise ValueError("give ids or ids_file")
        return self

    def all_ids(self) -> set[str]:
        ids = set(self.ids)
        if self.ids_file is not None:
            ids |= {line.strip() for line in self.ids_file.read_text(encoding="utf-8").splitlines()
                    if line.strip() and not line.lstrip().startswith("#")}
        return ids


@register
class DropIds(Filter):
    name = "drop_ids"
    Settings = DropIdsSettings
    description = "Drops the documents a list names (e.g. those a trace found behind a failed check)."

    def setup(self) -> None:
        self.ids_ = self.settings.all_ids()

    def filter(self, doc: Document, stats: StageStats) -> Optional[str]:
        if doc.id in self.ids_:
            stats.add("matched")
            return self.settings.reason
        return None

    def report(self, stats: StageStats, ctx: ReportContext) -> StageReport:
        listed = len(self.settings.all_ids())
        matched = stats.counters.get("matched", 0)
        checks = [Check.evaluate("listed_ids_found", matched, listed, "equal", "warning",
                                 "every id of the drop list was found in the corpus")] if self.settings.expect_all else []
        return StageReport(metrics={"listed": listed, "dropped": matched}, checks=checks,
                           details={"why": self.settings.why})
