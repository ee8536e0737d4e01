"""sha256 off the main thread, for hashing a corpus as it is read and outputs as they are written.

hashlib releases the GIL while it hashes a block of more than 2 KiB, so a reader or a writer hands its blocks to
one background thread and goes on parsing or encoding on its own core; the digest is read once every block handed
over has been hashed. The blocks are hashed in the order given, so every hash is the one hashing in line gives.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from typing import Optional

_queue: Optional[queue.SimpleQueue] = None
_lock = threading.Lock()


def _forget_thread() -> None:
    """In a forked child the thread is gone: the next digest starts one of the child's own."""
    global _queue, _lock
    _queue, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_thread)


def _hasher() -> queue.SimpleQueue:
    """The queue of the process's hashing thread (started at the first use)."""
    global _queue
    with _lock:
        if _queue is None:
            _queue = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(_queue,), name="fmaudit-sha256", daemon=True).start()
    return _queue


def _serve(work: queue.SimpleQueue) -> None:
    while True:
        update, block = work.get()
        update(block)


class Sha256:
    """A sha256 whose :meth:`update` hashes on the background thread; :meth:`hexdigest` waits for it."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._work = _hasher()

    def update(self, block) -> None:
        if type(block) is not bytes:
            block = bytes(block)  # a buffer its owner reuses must not change before the thread has hashed it
        self._work.put((self._h.update, block))

    def hexdigest(self) -> str:
        done = threading.Event()
        self._work.put((lambda _: done.set(), None))  # after every block this digest was given
        done.wait()
        return self._h.hexdigest()
