"""The model-stage contract: a job from a checkpoint (plus data) to a new checkpoint or a fitted artefact, and
a report of kind ``model_stage``.

A model stage

- declares ``name``, ``Settings`` (its policy section, ``tune: {NAME: {...}}``, a :class:`ModelStageSettings`)
  and the optional packages it ``requires`` (import name -> fmaudit extra, checked in :meth:`preflight`);
- implements :meth:`ModelStage.run` ``(checkpoint, out) -> StageOutput``: the new checkpoint lands in
  ``out/model`` (or the artefact in ``out/``), the report in ``out/reports/NAME.json``;
- records the input checkpoint's identity (:func:`fmaudit.core.checkpoint.checkpoint_sha256`) in the report's
  ``lineage`` (:meth:`ModelStage.lineage`), so any figure can be traced to the weights it was measured on;
- is resumable: run again with the same ``out`` it continues where it stopped (stages that train use
  :func:`fmaudit.core.train.fine_tune`, whose checkpoints restore weights, optimizer, data position and RNG),
  and it runs under ``torchrun`` where it trains (every process calls :meth:`run`; the main one writes);
- follows scikit-learn conventions where it fits an estimator: ``fit`` returns ``self``, fitted state ends in
  ``_``, seeds are explicit settings.

Register one with :func:`fmaudit.tune.register_model_stage`; other packages use the ``fmaudit.model_stages``
entry-point group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

from pydantic import Field

from fmaudit.settings import Strict


class ModelStageSettings(Strict):
    """Settings of a model stage; each stage subclasses this with its own fields."""

    seed: int = Field(0, ge=0, description="Seed of everything random the stage does (data order, sampling, "
                                           "initialisation of new parameters).")


@dataclass
class StageOutput:
    """What a model stage produced: ``checkpoint`` (a transformers folder) and/or ``artefact`` (a fitted
    file), and ``report`` (None on the non-main processes of a torchrun job, or when the run stopped early
    to be resumed: then ``completed`` is False)."""

    out: Path
    checkpoint: Optional[Path] = None
    artefact: Optional[Path] = None
    report: Optional[dict] = None
    completed: bool = True

    @property
    def failed_checks(self) -> list[dict]:
        return [c for c in (self.report or {}).get("checks", []) if not c["passed"] and c["severity"] == "error"]


class ModelStage(ABC):
    """Base class of model stages (see the module docstring)."""

    kind: ClassVar[str] = "model_stage"
    name: ClassVar[str]
    Settings: ClassVar[type[ModelStageSettings]] = ModelStageSettings
    requires: ClassVar[dict[str, str]] = {}
    description: ClassVar[str] = ""

    def __init__(self, settings: Optional[ModelStageSettings] = None):
        self.settings = settings if settings is not None else self.Settings()

    def preflight(self, checkpoint: Optional[Path] = None) -> None:
        """Cheap checks before any work: the optional packages are installed, every file or folder the settings
        name exists, and ``checkpoint`` (when given; ``fmaudit policy check`` has none) is a causal-LM folder
        with safetensors weights (InputError naming the problem otherwise)."""
        from fmaudit.core.checkpoint import check_checkpoint
        from fmaudit.registry import check_requires
        from fmaudit.settings import check_paths

        check_requires(type(self), f"model stage {self.name!r}")
        check_paths(self.settings, f"model stage {self.name}")
        if checkpoint is not None:
            check_checkpoint(checkpoint)

    @abstractmethod
    def run(self, checkpoint: Path, out: Path, *, policy=None, stop_after: Optional[int] = None,
            progress: bool = True, device: Optional[str] = None) -> StageOutput:
        """Run the stage on ``checkpoint`` into ``out`` (resuming what ``out`` holds); ``stop_after`` stops a
        training stage after that optimizer step (for tests and pre-emptible jobs)."""

    def lineage(self, checkpoint: Path, role: str = "input_checkpoint") -> list[dict]:
        """The report's lineage entry for a checkpoint folder: role, path and sha256 of its files."""
        from fmaudit.core.checkpoint import checkpoint_sha256

        return [{"role": role, "path": str(checkpoint), "sha256": checkpoint_sha256(checkpoint)}]

    def make_report(self, out: Path, checkpoint: Path, started_at: str, *, policy=None, metrics=None,
                    checks=(), details=None, plots=(), protocol=None, extra_lineage=(), wall_s: float = 0.0):
        """Build and write ``out/reports/NAME.json`` (kind model_stage, the input checkpoint in lineage)."""
        from fmaudit.reports import make_report, new_run_id, write_report

        report = make_report(self.name, new_run_id(), started_at, kind="model_stage", policy=policy,
                             section=self.settings.model_dump(mode="json", exclude_defaults=True),
                             metrics=metrics, checks=checks, details=details, plots=plots, protocol=protocol,
                             lineage=[*self.lineage(checkpoint), *extra_lineage], timings={"wall_s": wall_s})
        write_report(Path(out) / "reports", report)
        return report
