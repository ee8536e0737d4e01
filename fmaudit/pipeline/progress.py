"""The progress bar of a data job's pass: bytes of input processed, against the inputs' total, with an ETA.

Each shard spans the input bytes the reader consumed while the shard was cut (:class:`ReadPosition`, counted
per block read, compressed bytes for gzip). A shard counts as done in proportion to the batch steps its worker
has run (every stage over every batch), and wholly once committed, so the bar moves within a shard, not once per
shard. Workers report ``(shard, fraction)``: in-process through a callback, worker processes through a queue
that a thread of the driver drains (:class:`QueueReporter`), Ray actors once per shard, with its result.

The bar is written to stderr by tqdm and never touches the job's output; with ``--no-progress`` tqdm is not even
imported.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable

Report = Callable[[int, float], None]  # (shard index, fraction of the shard done, in [0, 1])


class ReadPosition:
    """Bytes of input consumed so far by the corpus reader, over all files (updated per block read)."""

    def __init__(self) -> None:
        self.bytes = 0


class PassProgress:
    """Input bytes processed by one pass, shown by a tqdm bar (or nothing, when ``enabled`` is False).

    ``interval``: the least seconds between two redraws (tqdm's ``mininterval``)."""

    def __init__(self, total_bytes: int, desc: str, enabled: bool = True, interval: float = 0.5):
        self.position = ReadPosition()
        self._cut = 0  # the read position when the last shard was cut
        self._span: dict[int, int] = {}
        self._done: dict[int, float] = {}
        self._lock = threading.Lock()
        self.documents = 0
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total_bytes, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                            mininterval=interval, miniters=0 if interval == 0 else None, file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.1)

    def cut(self, index: int) -> None:
        """Shard ``index`` was cut: it spans the bytes read since the previous cut."""
        with self._lock:
            self._span[index] = self.position.bytes - self._cut
            self._cut = self.position.bytes

    def report(self, index: int, fraction: float) -> None:
        """Shard ``index`` is ``fraction`` done (reports that arrive late and would move it back are ignored)."""
        with self._lock:
            before = self._done.get(index, 0.0)
            if fraction <= before:
                return
            self._done[index] = fraction
            if self.bar is None:
                return
            # float sums of shares of spans may pass the total by a rounding error: never beyond it
            step = min((fraction - before) * self._span.get(index, 0), self.bar.total - self.bar.n)
            if step > 0:
                self.bar.update(step)

    def committed(self, index: int, records: int) -> None:
        """Shard ``index`` (``records`` records) is committed, or was by an earlier run."""
        self.report(index, 1.0)
        self.documents += records
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.documents} docs", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class QueueReporter:
    """The driver's end of the progress queue of worker processes: a thread passes each ``(shard, fraction)``
    the workers put on ``queue`` to ``report`` until :meth:`stop`."""

    def __init__(self, queue, report: Report):
        self.queue, self._report = queue, report
        self._thread = threading.Thread(target=self._drain, name="fmaudit-progress", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (item := self.queue.get()) is not None:
            self._report(*item)

    def stop(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=5)


def queue_report(queue) -> Report:
    """A worker process's ``report``: puts ``(shard, fraction)`` on the driver's queue."""
    queue.cancel_join_thread()  # a worker that exits never waits for the driver to read its last reports

    def report(index: int, fraction: float) -> None:
        queue.put((index, fraction))

    return report


def no_report(index: int, fraction: float) -> None:
    """The ``report`` of a job without a progress bar."""
