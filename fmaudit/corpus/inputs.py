"""Which files a corpus argument names (side files and filter-job folders skipped, saying so), their kind, and
hashing what is read as it is read."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import queue
import threading
import weakref
from pathlib import Path
from typing import IO, Iterable, Iterator, Optional


from fmaudit.corpus.records import JSONL_SUFFIXES, PARQUET_SUFFIXES, TEXT_SUFFIXES
from fmaudit.errors import InputError


SIDE_FILES = ("truth.jsonl", "truth.jsonl.gz")
JOB_MARKER = Path(".fmaudit") / "job.json"  # a folder written by ``fmaudit filter``: only its data/ is corpus


def side_file_reason(folder: Path, path: Path) -> str | None:
    """Why ``path``, found below the named ``folder``, is not part of the corpus (None: it is)."""
    if path.name.lower() in SIDE_FILES:
        return "ground-truth file"
    if (folder / JOB_MARKER).is_file() and path.relative_to(folder).parts[0] != "data":
        return "not data/ of an fmaudit filter output"
    return None


def expand_inputs(paths: Iterable[str | os.PathLike], exclude: Iterable[str | os.PathLike] = (),
                  skipped: list | None = None) -> list[Path]:
    """Files named directly, plus every readable file below each named folder, in sorted order; files below
    an ``exclude`` folder (a job's own output folder inside an input folder) are left out.

    Given a ``skipped`` list (``fmaudit filter`` does), known side files below a named folder
    (:func:`side_file_reason`) are left out too, each with a warning and appended to it as ``{"path", "reason"}``."""
    files: list[Path] = []
    skip = [Path(x).resolve() for x in exclude]

    def excluded(f: Path) -> bool:
        resolved = f.resolve()
        return any(resolved == x or x in resolved.parents for x in skip)

    for p in map(Path, paths):
        if p.is_dir():
            found = []
            for f in sorted(f for f in p.rglob("*") if f.is_file() and input_kind(f) is not None and not excluded(f)):
                reason = side_file_reason(p, f) if skipped is not None else None
                if reason is None:
                    found.append(f)
                    continue
                logging.getLogger("fmaudit.corpus").warning("%s: skipped (%s), not read as corpus; name the file "
                                                            "itself to read it", f, reason)
                skipped.append({"path": str(f), "reason": reason})
            if not found:
                raise InputError(f"{p}: folder holds no .jsonl, .jsonl.gz, .parquet or .txt files")
            files.extend(found)
        elif p.is_file():
            if input_kind(p) is None:
                raise InputError(f"{p}: unknown corpus format (expected .jsonl, .jsonl.gz, .parquet or .txt)")
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    for f in files:
        if input_kind(f) == "parquet":
            _check_parquet_schema(f)
    return files


def _check_parquet_schema(path: Path) -> None:
    """InputError for a Parquet file without a ``text`` column, so a job stops before any work; a file whose
    footer cannot be read is left to the reader, which quarantines it."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception:  # pyarrow raises several types for a corrupt footer
        return
    if "text" not in names:
        raise InputError(f"{path}: Parquet file has no 'text' column (columns: {', '.join(names) or 'none'})")


def input_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def check_read_hashes(recorded: dict[str, str], read: dict[str, str | None]) -> None:
    """InputError naming each input whose bytes, as read, differ from the sha256 recorded for it when the job
    started (the file changed on disk while the job ran, or since an earlier run recorded it)."""
    changed = [path for path, sha in recorded.items() if read.get(path) is not None and read[path] != sha]
    if changed:
        raise InputError(f"{changed[0]}: input changed while the job read it (its sha256 when the job started "
                         f"is not that of the bytes read){f', and {len(changed) - 1} more' if len(changed) > 1 else ''}; "
                         "what was read is not what the job recorded, so it is not marked complete: restore the "
                         "input, or start over with a new --out")


class ReadDigest:
    """sha256 of the bytes a reader consumed; ``whole`` is False when the file could not be read to its end.
    ``position``: an object whose ``bytes`` counts what is consumed (a progress bar's), or None.

    The bytes are hashed on a thread, :data:`HASH_CHUNK` at a time: hashing releases the GIL, so where a core is
    free it costs the reader nothing. At most :data:`HASH_BACKLOG` chunks wait (the reader waits beyond that);
    a file smaller than a chunk is hashed in :meth:`hexdigest`, with no thread."""

    HASH_CHUNK = 4 << 20  # large, so the thread takes the GIL back (to join a chunk) a few times per file only
    HASH_BACKLOG = 4

    def __init__(self, position=None) -> None:
        self._h = hashlib.sha256()
        self.whole = True
        self.position = position
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._chunks: Optional[queue.Queue] = None
        self._hasher: Optional[threading.Thread] = None

    def update(self, block) -> None:
        self._pending.append(bytes(block))  # a view into a reused buffer (below a gzip decoder) is copied
        self._pending_bytes += len(block)
        if self.position is not None:
            self.position.bytes += len(block)
        if self._pending_bytes >= self.HASH_CHUNK:
            if self._hasher is None:
                self._chunks = queue.Queue(self.HASH_BACKLOG)
                self._hasher = threading.Thread(target=_hash_chunks, args=(self._chunks, self._h),
                                                name="fmaudit-read-hash", daemon=True)
                self._hasher.start()
                weakref.finalize(self, self._chunks.put, None)  # a reader given up on: the thread ends
            self._chunks.put(self._pending)
            self._pending, self._pending_bytes = [], 0

    def hexdigest(self) -> str:
        if self._hasher is not None:
            self._chunks.put(None)
            self._hasher.join()
            self._hasher = None
        for block in self._pending:
            self._h.update(block)
        self._pending, self._pending_bytes = [], 0
        return self._h.hexdigest()


def _hash_chunks(chunks: queue.Queue, digest) -> None:
    """The hashing thread of a :class:`ReadDigest` (holding no reference to it): each chunk until None."""
    while (chunk := chunks.get()) is not None:
        digest.update(b"".join(chunk))


class HashingReader:
    """A raw binary file whose bytes go into ``digest`` as they are read (below a gzip decoder)."""

    def __init__(self, raw, digest):
        self.raw, self.digest = raw, digest

    def read(self, n: int = -1) -> bytes:
        block = self.raw.read(n)
        self.digest.update(block)
        return block

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.digest.update(memoryview(buffer)[:n])
        return n

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def __getattr__(self, name):
        return getattr(self.raw, name)


READ_BLOCK = 1 << 18  # the batch path decodes a block in one call: 0.1 s less CPU per 100k documents than 64 KiB


def iter_blocks(f, digest) -> Iterator[bytes]:
    """Runs of whole lines of binary file ``f`` (plain, or a gzip decoder over a hashing reader), each ending
    in a newline but the file's last, read :data:`READ_BLOCK` bytes at a time (a line longer than a block is
    gathered in pieces and joined once: linear in its length). A plain file's bytes go into ``digest`` as
    they are read."""
    pending: list[bytes] = []  # the start of a line the blocks read so far have not finished
    read = f.read1  # what is there now (a pipe's first lines, what decodes before a gzip truncation)
    while block := read(READ_BLOCK):
        if digest is not None:
            digest.update(block)
        cut = block.rfind(b"\n") + 1
        if not cut:
            pending.append(block)
            continue
        if pending:
            pending.append(block[:cut])
            yield b"".join(pending)
            pending = []
        else:
            yield block if cut == len(block) else block[:cut]
        if cut < len(block):
            pending.append(block[cut:])
    if pending:
        yield b"".join(pending)


def open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")
