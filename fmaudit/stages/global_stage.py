"""The contract of a global stage: one that needs the whole corpus before it can decide about any document
(deduplication). The per-batch contract cannot express it, so the runner runs a global stage in three
passes, each resumable after a kill like any shard pass:

1. **sign** (per shard, on the engine's workers): :meth:`GlobalStage.sign` turns a shard's documents into
   per-document arrays (hashes, signatures), committed atomically as ``.fmaudit/global/<stage>/sig/NNNNN/``
   with a completion marker per shard;
2. **decide** (once, in the driver): :meth:`GlobalStage.decide` reads every shard's arrays and writes the
   decisions (which documents go, and why), committed with a marker; a killed decide step starts over;
3. **apply** (per shard, the ordinary pass): the runner hands each shard's decisions to the stage
   (:meth:`GlobalStage.use_decisions`), and :meth:`GlobalStage.process` applies them like any stage.

Stages before the global ones in a policy run in the sign pass (so a global stage signs what they keep,
for example anonymized text) and are not run again: the apply pass continues each shard from the work the
sign pass committed. The global stages of a policy follow one another, and see each other's drops: a later one's ``decide`` gets the documents an earlier one drops as
``excluded``, so they are never chosen as the copy to keep.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from fmaudit.corpus import Document
from fmaudit.stages.base import Stage

if TYPE_CHECKING:  # numpy is imported by the global stages themselves: a job without one runs without it
    import numpy as np


@dataclass
class GlobalDecisions:
    """What a global step decided: per shard, document id -> the facts of its drop (JSON-able); the dense
    numbers of the dropped documents (for the next global stage's ``excluded``); a summary for the report."""

    drops: dict[int, dict[str, dict]] = field(default_factory=dict)
    dropped_docs: np.ndarray = field(default_factory=lambda: _no_documents())
    summary: dict = field(default_factory=dict)


def _no_documents() -> "np.ndarray":
    import numpy as np

    return np.zeros(0, dtype=np.int64)


class GlobalStage(Stage):
    """Base class of global stages (see the module docstring for the passes)."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self._decisions: dict[str, dict] = {}

    @abstractmethod
    def sign(self, docs: list[Document]) -> dict[str, np.ndarray]:
        """Per-document arrays for one shard (first axis: the documents, in order)."""

    @abstractmethod
    def decide(self, sig_root: Path, n_shards: int, workdir: Path,
               excluded: Optional[np.ndarray]) -> GlobalDecisions:
        """Read the committed shards under ``sig_root`` and decide; ``workdir`` is scratch space (spills)."""

    def use_decisions(self, decisions: dict[str, dict]) -> None:
        """The decisions of the shard about to be processed (document id -> facts); called by the runner."""
        self._decisions = decisions


class GlobalOrderError(ValueError):
    """Global stages that do not follow one another; ``position``: the stage between them."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.position = position


def global_block(names: list[str]) -> tuple[int, list[str]]:
    """``(first, globals)``: the position of the first global stage among stage ``names`` and the global
    stages, which must follow one another (one sign pass and one decide step serve them all)."""
    from fmaudit.stages import STAGES

    found = [i for i, name in enumerate(names) if issubclass(STAGES.get(name), GlobalStage)]
    if found and found != list(range(found[0], found[0] + len(found))):
        gap = next(i for i in range(found[0], found[-1]) if i not in found)
        raise GlobalOrderError(f"global stages ({', '.join(names[i] for i in found)}) must follow one another in "
                               f"the stage list; {names[gap]!r} comes between them", gap)
    return (found[0] if found else 0), [names[i] for i in found]


def global_dir(out_dir: str | Path, stage: str) -> Path:
    """Where a global stage's passes keep their state in a job folder (signatures, decisions, summary)."""
    return Path(out_dir) / ".fmaudit" / "global" / stage


def global_summary(out_dir: str | Path, stage: str) -> dict:
    """The summary the global step of ``stage`` committed (for the stage's report)."""
    import json

    return json.loads((global_dir(out_dir, stage) / "summary.json").read_text(encoding="utf-8"))
