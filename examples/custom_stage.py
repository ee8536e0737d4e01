"""A stage of your own, registered by name and run by the same runner as the built-in ones.

    python examples/custom_stage.py CORPUS OUT

The stage drops documents made mostly of digits (tables, logs, ID dumps) and records the digit share
of every document in a histogram that merges exactly across shards. Stages defined outside fmaudit
reach worker processes through an importable module (as here) or the ``fmaudit.stages`` entry-point group.
"""

from __future__ import annotations

import sys
from typing import Optional

from pydantic import Field

from fmaudit.corpus import Document
from fmaudit.stages import Filter, ReportContext, StageReport, StageSettings, register
from fmaudit.reports.content import Check
from fmaudit.stats import StageStats


class DigitShareSettings(StageSettings):
    max_digit_share: float = Field(0.3, ge=0, le=1, description="Drop documents whose characters are more "
                                                                "than this share digits.")


@register
class DigitShare(Filter):
    name = "digit_share"
    Settings = DigitShareSettings
    description = "Drops documents made mostly of digits."

    def filter(self, doc: Document, stats: StageStats) -> Optional[str]:
        share = sum(c.isdigit() for c in doc.text) / len(doc.text)
        stats.hist("digit_share", share, 0.0, 1.0, 20)
        if share > self.settings.max_digit_share:
            stats.sample("dropped", id=doc.id, text=doc.text[:200])
            return "too_many_digits"
        return None

    def report(self, stats: StageStats, ctx: ReportContext) -> StageReport:
        dropped = stats.counters.get("dropped:too_many_digits", 0)
        share = dropped / stats.counters["in"] if stats.counters.get("in") else 0.0
        return StageReport(metrics={"digit_heavy_share": share},
                           checks=[Check.evaluate("digit_heavy_share", share, 0.5, "max", "warning",
                                                  "share of documents that were mostly digits")])


def main(corpus: str, out: str) -> int:
    from fmaudit.pipeline.runner import run_filter
    from fmaudit.policy import policy_from_dict
    from fmaudit.reports.table import print_summary

    policy = policy_from_dict({"version": 1, "name": "example", "pipeline": {"samples": 0},
                               "stages": [{"stage": "digit_share", "max_digit_share": 0.3}]})
    result = run_filter(policy, [corpus], out, workers=1)  # workers=1: the stage lives in this script
    print_summary(result.summary, result.counts)
    return result.exit_code


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
