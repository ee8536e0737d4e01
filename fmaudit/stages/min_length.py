"""``min_length``: drops documents too short to teach a language model anything.

Very short pages (navigation stubs, error pages, one-line fragments) are a staple of web-crawl
clean-up (Gopher's and C4's rules). Counts are in characters and whitespace-separated words.
"""

import math
from typing import Optional

from pydantic import Field

from fmaudit.corpus import Document
from fmaudit.stages import register
from fmaudit.stages.base import Filter, ReportContext, StageReport, StageSettings
from fmaudit.stats import StageStats


class MinLengthSettings(StageSettings):
    min_chars: int = Field(200, ge=0, le=10_000_000, description="Drop documents with fewer characters than this (after stripping).")
    min_words: int = Field(50, ge=0, le=1_000_000, description="Drop documents with fewer whitespace-separated words than this.")


@register
class MinLength(Filter):
    name = "min_length"
    Settings = MinLengthSettings
    description = "Drops documents shorter than a minimum number of characters or words."

    def filter(self, doc: Document, stats: StageStats) -> Optional[str]:
        text = doc.text.strip()
        words = len(text.split())
        stats.hist("length_chars_log10", math.log10(len(text)) if text else 0.0, 0.0, 6.0, 24)
        if len(text) < self.settings.min_chars:
            stats.sample("dropped", id=doc.id, text=text[:300], reason="too_few_chars")
            return "too_few_chars"
        if words < self.settings.min_words:
            stats.sample("dropped", id=doc.id, text=text[:300], reason="too_few_words")
            return "too_few_words"
        stats.observe("kept_chars", len(text))
        return None

    def report(self, stats: StageStats, ctx: ReportContext) -> StageReport:
        kept = stats.moments.get("kept_chars")
        metrics = {"kept_mean_chars": kept.mean} if kept and kept.n else {}
        return StageReport(metrics=metrics)
