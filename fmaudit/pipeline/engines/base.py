"""The engine interface: run shard tasks on workers that each hold one :class:`ShardProcessor`.

An engine receives a lazy stream of tasks and yields results as shards finish, keeping only a
bounded number of shards in flight, so the driver's memory stays flat. Stages never see the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable, Iterator, Optional

from fmaudit.pipeline.progress import Report
from fmaudit.pipeline.worker import ProcessorSpec, ShardResult, ShardTask


class Engine(ABC):
    name: str

    def __init__(self, workers: int):
        self.workers = max(1, workers)

    @abstractmethod
    def run(self, spec: ProcessorSpec, tasks: Iterable[ShardTask],
            report: Optional[Report] = None) -> Iterator[ShardResult]:
        """Process every task; yield each result when its shard has been committed. ``report(shard, fraction)``,
        when given, is called as workers get through a shard (from any thread), as often as the engine can."""
