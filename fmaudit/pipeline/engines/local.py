"""The local engine: in-process for one worker, a pool of spawned processes otherwise."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Iterable, Iterator

from fmaudit.pipeline.engines.base import Engine
from fmaudit.pipeline.worker import ProcessorSpec, ShardProcessor, ShardResult, ShardTask, init_worker, run_in_worker


class LocalEngine(Engine):
    name = "local"

    def __init__(self, workers: int, in_flight_per_worker: int = 2):
        super().__init__(workers)
        self.max_in_flight = self.workers * in_flight_per_worker

    def run(self, spec: ProcessorSpec, tasks: Iterable[ShardTask]) -> Iterator[ShardResult]:
        if self.workers == 1:
            processor = ShardProcessor(spec)
            for task in tasks:
                yield processor.process(task)
            return
        ctx = mp.get_context("spawn")  # no fork of a driver that may hold threads or loaded models
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=init_worker, initargs=(spec,)) as pool:
            pending = set()
            for task in tasks:
                pending.add(pool.submit(run_in_worker, task))
                if len(pending) >= self.max_in_flight:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
