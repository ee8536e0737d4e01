"""Writers of fmaudit's own files: atomic JSON, reproducible JSONL (plain or gzip), sharded JSONL."""

from __future__ import annotations

import gzip
import json
import os
from itertools import islice
from pathlib import Path
from typing import Iterable

import msgspec

from fmaudit.corpus.records import Document

_encode_lines = msgspec.json.Encoder().encode_lines  # a Document is encoded as its to_json() would be


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict | Document], digest=None) -> int:
    """Write rows (dicts, or documents as ``{"id", "text", "meta"}``) as JSONL, in the encoding of
    :func:`fmaudit.corpus.records.dumps` (gzip when the name ends in .gz, reproducibly: no timestamp); returns
    the count. ``digest`` (a hashlib object) takes every byte written to the file, so its hash needs no second
    read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    rows = iter(rows)
    with open(path, "wb") as raw:
        sink = raw if digest is None else _HashingWriter(raw, digest)
        f = gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0) if path.name.endswith(".gz") else sink
        while chunk := list(islice(rows, 2048)):  # encoded in one call, written in one write
            f.write(_encode_lines(chunk))
            n += len(chunk)
        if f is not sink:
            f.close()
    return n


class _HashingWriter:
    """A binary file whose written bytes also go into ``digest``."""

    def __init__(self, raw, digest):
        self.raw, self.digest = raw, digest

    def write(self, block) -> int:
        self.digest.update(block)
        return self.raw.write(block)

    def flush(self) -> None:
        self.raw.flush()


class ShardedJsonlWriter:
    """Writes documents to ``DIR/<prefix>-00000.jsonl``, ``-00001``, ... with at most ``docs_per_shard`` each."""

    def __init__(self, out_dir: str | os.PathLike, docs_per_shard: int = 10_000, prefix: str = "part", gzip_output: bool = False):
        self.out_dir = Path(out_dir)
        self.docs_per_shard = docs_per_shard
        self.prefix = prefix
        self.suffix = ".jsonl.gz" if gzip_output else ".jsonl"
        self.paths: list[Path] = []
        self._buffer: list[dict] = []

    def write(self, doc: Document | dict) -> None:
        self._buffer.append(doc.to_json() if isinstance(doc, Document) else doc)
        if len(self._buffer) >= self.docs_per_shard:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            path = self.out_dir / f"{self.prefix}-{len(self.paths):05d}{self.suffix}"
            write_jsonl(path, self._buffer)
            self.paths.append(path)
            self._buffer = []

    def close(self) -> list[Path]:
        self._flush()
        return self.paths

    def __enter__(self) -> "ShardedJsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
