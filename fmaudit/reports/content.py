"""What every producer of a report hands the envelope: checks, metrics, details and plots.

Data stages, the training loop, model stages and audits all describe their results with these types;
:func:`fmaudit.reports.make_report` wraps them in the common envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional


@dataclass
class Check:
    """One pass/fail gate. ``direction`` "max": passes when value <= threshold; "min": value >= threshold."""

    name: str
    value: Any
    threshold: Any
    direction: Literal["max", "min", "equal"]
    passed: bool
    severity: Literal["error", "warning", "info"] = "error"
    description: str = ""
    ci: Optional[tuple[float, float]] = None  # confidence interval of ``value``, where the producer has one

    @classmethod
    def evaluate(cls, name: str, value, threshold, direction: str = "max", severity: str = "error",
                 description: str = "", ci: Optional[tuple[float, float]] = None) -> "Check":
        if direction == "max":
            passed = value <= threshold
        elif direction == "min":
            passed = value >= threshold
        else:
            passed = value == threshold
        return cls(name, value, threshold, direction, bool(passed), severity, description, ci)

    def to_json(self) -> dict:
        return {"name": self.name, "value": self.value, "threshold": self.threshold, "direction": self.direction,
                "passed": self.passed, "severity": self.severity, "description": self.description,
                **({"ci": list(self.ci)} if self.ci is not None else {})}


@dataclass
class StageReport:
    """What a producer adds to its report envelope: metrics, checks, details and plot file names."""

    metrics: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)


@dataclass
class ReportContext:
    """Where a stage's report goes, and what it may read: the run's output folder and optional ground truth."""

    out_dir: Path
    reports_dir: Path
    truth_path: Optional[Path] = None
