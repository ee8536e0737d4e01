"""The local engine: in-process for one worker, a pool of spawned processes otherwise."""

from __future__ import annotations

from typing import Iterable, Iterator, Optional

from fmaudit.pipeline.engines.base import Engine
from fmaudit.pipeline.progress import QueueReporter, Report, no_report
from fmaudit.pipeline.worker import ProcessorSpec, ShardProcessor, ShardResult, ShardTask, init_worker, run_in_worker


class LocalEngine(Engine):
    name = "local"

    def __init__(self, workers: int, in_flight_per_worker: int = 2):
        super().__init__(workers)
        self.max_in_flight = self.workers * in_flight_per_worker

    def run(self, spec: ProcessorSpec, tasks: Iterable[ShardTask],
            report: Optional[Report] = None) -> Iterator[ShardResult]:
        if self.workers == 1:
            yield from ShardProcessor(spec, report or no_report).process_all(tasks)
            return
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        ctx = mp.get_context("spawn")  # no fork of a driver that may hold threads or loaded models
        queue = ctx.Queue() if report is not None else None  # workers' batch steps, for the progress bar
        reporter = QueueReporter(queue, report) if queue is not None else None
        try:
            with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=init_worker,
                                     initargs=(spec, queue)) as pool:
                pending = set()
                for task in tasks:
                    pending.add(pool.submit(run_in_worker, task))
                    if len(pending) >= self.max_in_flight:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        yield from (f.result() for f in done)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
        finally:
            if reporter is not None:
                reporter.stop()
