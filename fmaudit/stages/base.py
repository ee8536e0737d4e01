"""The data-stage contract.

A stage takes a batch of documents and returns a :class:`StageResult`: the kept (possibly rewritten)
documents, each dropped document with a reason, documents held for human review, documents it added
(augmentation), and optional side outputs (for example the PII ledger). The runner counts documents
in and out; a stage records its own figures in the :class:`~fmaudit.stats.StageStats` it is given,
and turns the merged statistics into metrics and checks in :meth:`Stage.report`.

Stage modules import their heavy libraries inside :meth:`Stage.setup`, so a policy can be validated
without loading any model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from fmaudit.corpus import Document
from fmaudit.reports.content import Check, ReportContext, StageReport
from fmaudit.settings import StageSettings
from fmaudit.stats import StageStats

__all__ = ["Check", "Filter", "ReportContext", "Resources", "Stage", "StageReport", "StageResult", "StageSettings"]


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage needs; engines that place work (Ray) read it."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 0.5


@dataclass
class StageResult:
    kept: list[Document]
    dropped: list[tuple[Document, str]] = field(default_factory=list)
    held: list[tuple[Document, str]] = field(default_factory=list)
    added: list[Document] = field(default_factory=list)
    side: dict[str, list[dict]] = field(default_factory=dict)


class Stage(ABC):
    """Base class of data stages. Subclasses set ``name`` and ``Settings`` and implement :meth:`process`."""

    name: ClassVar[str]
    Settings: ClassVar[type[StageSettings]] = StageSettings
    resources: ClassVar[Resources] = Resources()
    description: ClassVar[str] = ""

    def __init__(self, settings: Optional[StageSettings] = None):
        self.settings = settings if settings is not None else self.Settings()

    def preflight(self) -> None:
        """Cheap checks run once in the driver before any document is read (files exist, keys are set).
        Raise :class:`fmaudit.errors.InputError` naming the problem and the ways out; no work happens then."""

    def setup(self) -> None:
        """Load models and other heavy state; called once per worker before the first batch."""

    @abstractmethod
    def process(self, docs: list[Document], stats: StageStats) -> StageResult:
        """Process one batch of documents."""

    def report(self, stats: StageStats, ctx: ReportContext) -> StageReport:
        """Turn the run's merged statistics into metrics, checks and details. Default: nothing more."""
        return StageReport()


class Filter(Stage):
    """A stage that decides for each document alone: keep it, or drop it with a reason."""

    @abstractmethod
    def filter(self, doc: Document, stats: StageStats) -> Optional[str]:
        """Return None to keep ``doc``, or the reason to drop it."""

    def process(self, docs: list[Document], stats: StageStats) -> StageResult:
        result = StageResult(kept=[])
        for doc in docs:
            reason = self.filter(doc, stats)
            if reason is None:
                result.kept.append(doc)
            else:
                result.dropped.append((doc, reason))
        return result
