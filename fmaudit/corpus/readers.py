"""Streaming corpus readers (JSONL, Parquet, text folders): one record at a time whatever the corpus size, a
malformed record quarantined and never fatal; duplicate ids found across files with 8 bytes per document."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path
from itertools import chain, islice
from operator import methodcaller
from typing import Iterable, Iterator

import orjson
import xxhash

from fmaudit.corpus.blocks import BlockLines, LineCounter, decode_block, ids_of, texts_of
from fmaudit.corpus.inputs import HashingReader, ReadDigest, expand_inputs, input_kind, iter_blocks, open_binary
from fmaudit.corpus.records import (UTF8_BOM, Document, Quarantined, Record, diagnose_json_error, dumps,
                                    record_from_object)
from fmaudit.errors import InputError


def read_corpus(paths: Iterable[str | os.PathLike], max_chars: int | None = None,
                hashes: dict[str, str | None] | None = None, position=None) -> Iterator[Record]:
    """Stream documents and quarantined records from files and folders, in a deterministic order.

    Duplicate ids across all inputs are quarantined (the first occurrence is kept), and so are documents
    longer than ``max_chars`` characters (``too_long``). Given ``hashes``, the sha256 of the bytes each file's
    reader consumed is stored there under the file's path once the file is read (None if the file could not
    be read to its end), so a caller can tell whether what was read is what it recorded. ``position.bytes``
    (with ``hashes``) counts the bytes consumed so far, for a progress bar.
    """
    return chain.from_iterable(read_corpus_batches(paths, max_chars, hashes, position))


def read_corpus_batches(paths: Iterable[str | os.PathLike], max_chars: int | None = None,
                        hashes: dict[str, str | None] | None = None, position=None) -> Iterator[list[Record]]:
    """:func:`read_corpus` a batch of records at a time (a block of a JSONL file, a record batch of a Parquet
    file), the form the runner cuts into shards: a batch of ordinary documents (the batch path of
    :mod:`.blocks`) is checked for length and duplicate ids as a whole, the rest record by record."""
    seen = IdIndex()
    for path in expand_inputs(paths):
        kind = input_kind(path)
        digest = ReadDigest(position) if hashes is not None else None
        for lines, records in _BATCHES[kind](path, digest=digest):
            if type(lines) in _DECODED and (max_chars is None or max(map(len, map(texts_of, records)), default=0)
                                            <= max_chars) \
                    and seen.add_all(list(map(ids_of, records))):
                yield records  # documents only, none too long, no id seen before
            else:
                yield [_check_document(rec, line, path, max_chars, seen) for line, rec in zip(lines, records)]
        if hashes is not None:
            sha256 = digest.hexdigest()  # also ends its hashing thread
            hashes[str(path)] = sha256 if digest.whole else None


_DECODED = (range, BlockLines)  # the lines of a block the batch path decoded: documents only, one per line


def _check_document(rec: Record, line: int, path: Path, max_chars: int | None, seen: "IdIndex") -> Record:
    """``rec``, or a quarantine record when it is a document that is too long or whose id came before."""
    if type(rec) is Document:
        if max_chars is not None and len(rec.text) > max_chars:
            return Quarantined(str(path), line, "too_long", f"text has {len(rec.text)} characters, over "
                               f"pipeline.max_chars ({max_chars})", dumps(rec.to_json()))
        if not seen.add(rec.id):
            return Quarantined(str(path), line, "duplicate_id", f"duplicate id {rec.id!r}", dumps(rec.to_json()))
    return rec


class IdIndex:
    """Set of document ids seen so far, kept as 8-byte digests: the one piece of reader state that grows
    with the corpus. Recent digests sit in a small Python set; every 2^18 they become a sorted numpy run, and
    runs of similar size are merged (as in a log-structured merge tree), so the cost is about 8 bytes per
    document (800 MB per 100M documents) and each lookup searches a logarithmic number of runs.

    The digest is XXH3-64 of the id's UTF-8 bytes (a few times cheaper per id than a cryptographic hash, and as
    stable: the same corpus always meets the same, astronomically rare, collisions). It is never stored."""

    FLUSH = 1 << 18

    def __init__(self) -> None:
        self._recent: set[int] = set()
        self._runs: list = []  # sorted numpy uint64 arrays (numpy is imported at the first flush)

    def add(self, doc_id: str) -> bool:
        """Record ``doc_id``; False if it was already there."""
        key = _xxh3_64(_utf8(doc_id))
        if key in self._recent:
            return False
        if self._runs:
            import numpy as np

            k = np.uint64(key)
            for run in self._runs:
                i = run.searchsorted(k)
                if i < run.size and run[i] == k:
                    return False
        self._recent.add(key)
        if len(self._recent) >= self.FLUSH:
            self._flush()
        return True

    def add_all(self, doc_ids: list[str]) -> bool:
        """Record every id of ``doc_ids`` and return True if none was there before and no two are equal;
        otherwise record nothing and return False (the caller then adds them one by one, to learn which)."""
        try:
            new = set(map(_xxh3_64, map(str.encode, doc_ids)))  # UTF-8; an id with a lone surrogate goes one by one
        except UnicodeEncodeError:
            return False
        if len(new) != len(doc_ids) or not self._recent.isdisjoint(new):
            return False
        if self._runs:
            import numpy as np

            wanted = np.fromiter(new, dtype=np.uint64, count=len(new))
            for run in self._runs:
                at = np.minimum(run.searchsorted(wanted), run.size - 1)
                if (run[at] == wanted).any():
                    return False
        self._recent |= new
        if len(self._recent) >= self.FLUSH:
            self._flush()
        return True

    def _flush(self) -> None:
        import numpy as np

        run = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        run.sort()
        self._runs.append(run)
        self._recent = set()
        while len(self._runs) > 1 and self._runs[-2].size <= 2 * self._runs[-1].size:
            last = self._runs.pop()
            self._runs[-1] = np.union1d(self._runs[-1], last)

    def __len__(self) -> int:
        return len(self._recent) + sum(int(r.size) for r in self._runs)


_xxh3_64 = xxhash.xxh3_64_intdigest
_utf8 = methodcaller("encode", "utf-8", "surrogatepass")


def read_jsonl(path: str | os.PathLike, digest: "ReadDigest | None" = None) -> Iterator[tuple[int, Record]]:
    """Stream ``(line, record)`` pairs of a JSONL file (plain or gzip); the file's bytes go into ``digest`` as
    they are read."""
    for lines, records in jsonl_batches(path, digest):
        yield from zip(lines, records)


def jsonl_batches(path: str | os.PathLike, digest: "ReadDigest | None" = None
                  ) -> Iterator[tuple[Iterable[int], list[Record]]]:
    """``(lines, records)`` of each block of a JSONL file (plain or gzip): a block of ordinary lines decoded at
    once (``lines`` is then a :class:`~fmaudit.corpus.blocks.BlockLines`, or for a gzip file or a pipe a
    ``range``: one document per line that is not blank), any other block line by line (a list of the lines that
    hold a record: blank lines hold none). In a plain file, lines are counted only where a line number is
    needed (a quarantine, a block read line by line): counting every block was 7% of a clean file's reading."""
    path = Path(path)
    source = str(path)
    try:
        raw_file = open(path, "rb")
    except OSError as e:
        yield [-1], [Quarantined(source, -1, "unreadable_file", f"unreadable file: {e.strerror or e}", "")]
        if digest is not None:
            digest.whole = False
        return
    with raw_file:
        gz = path.name.lower().endswith(".gz")
        hashing = HashingReader(raw_file, digest) if gz and digest is not None else raw_file
        f = gzip.GzipFile(fileobj=hashing, mode="rb") if gz else raw_file
        counter = None if gz or not stat.S_ISREG(os.fstat(raw_file.fileno()).st_mode) else LineCounter(path)
        try:
            first, offset = 1, 0  # the block's first line (when counted) and first byte
            for block in iter_blocks(f, None if gz else digest):
                at, offset = offset, offset + len(block)
                if at == 0 and block.startswith(UTF8_BOM):
                    block = block[len(UTF8_BOM):]
                if counter is not None:
                    docs = decode_block(block)
                    yield (BlockLines(block, at, counter), docs) if docs is not None else \
                        _parse_lines(block, source, counter.line_at(at))
                    continue
                n = block.count(b"\n") + (not block.endswith(b"\n"))
                docs = decode_block(block, n)
                yield (range(first, first + n), docs) if docs is not None else _parse_lines(block, source, first)
                first += n
        except (OSError, EOFError) as e:
            # A truncated or corrupt gzip stream: what was read stays; the rest is one quarantine record.
            yield [-1], [Quarantined(source, -1, "unreadable_file", f"unreadable file: {e}", "")]
            try:
                if isinstance(hashing, HashingReader):
                    hashing.drain()  # the compressed bytes past the error still belong to the file's hash
                elif digest is not None:
                    digest.whole = False
            except OSError:
                digest.whole = False
        finally:
            if counter is not None:
                counter.close()


def _parse_lines(block: bytes, source: str, first: int) -> tuple[list[int], list[Record]]:
    """The records of a block line by line (the per-line path: each malformed line quarantined with its
    reason); blank lines hold no record."""
    lines: list[int] = []
    records: list[Record] = []
    loads, bad_json = orjson.loads, orjson.JSONDecodeError
    for lineno, raw in enumerate(block.split(b"\n"), first):
        try:
            rec = record_from_object(loads(raw), source, lineno, raw)
        except bad_json as e:
            if not raw.strip():  # a blank line (or the empty piece after the block's last newline)
                continue
            rec = diagnose_json_error(raw, source, lineno, e)
        lines.append(lineno)
        records.append(rec)
    return lines, records


def iter_json_rows(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """``(line, row)`` of each JSON object in a JSONL file (plain or gzip) that fmaudit or its user wrote for
    fmaudit (side outputs, ground truth, metrics), not a corpus: here a bad line is an InputError naming the
    file and the line, and an unreadable file one naming the file."""
    path = Path(path)
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError as e:
                    raise InputError(f"{path}:{lineno}: not JSON: {e.msg} at column {e.colno}") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{lineno}: not a JSON object")
                yield lineno, row
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None


def read_parquet(path: str | os.PathLike, batch_rows: int = 1024, digest: ReadDigest | None = None
                 ) -> Iterator[tuple[int, Record]]:
    """Stream rows of a Parquet file in record batches; ``line`` is the 1-based row number.

    A row group that cannot be decoded (a corrupt data page) becomes one ``unreadable_file`` record naming
    its rows, and reading goes on with the next row group."""
    import pyarrow.parquet as pq

    path = Path(path)
    source = str(path)
    try:
        pf = pq.ParquetFile(path)
        sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
    except Exception as e:  # pyarrow raises several types for a corrupt file
        yield -1, Quarantined(source, -1, "unreadable_file", f"unreadable Parquet file: {e}", "")
        if digest is not None:
            digest.whole = False
        return
    if "text" not in pf.schema_arrow.names:
        raise InputError(f"{path}: Parquet file has no 'text' column (columns: {', '.join(pf.schema_arrow.names)})")
    first = 1  # row number of the row group's first row
    for group, size in enumerate(sizes):
        row = first
        batches = pf.iter_batches(batch_size=batch_rows, row_groups=[group])
        while True:
            try:
                batch = next(batches, None)
                rows = batch.to_pylist() if batch is not None else None
            except Exception as e:  # pyarrow: OSError (corrupt page), ArrowInvalid, ...
                yield row, Quarantined(source, row, "unreadable_file", f"row group {group} (rows {row} to "
                                       f"{first + size - 1}) cannot be read: {e}", "")
                break
            if rows is None:
                break
            for obj in rows:
                yield row, record_from_object(obj, source, row)
                row += 1
        first += size
    if digest is not None:  # pyarrow reads pages where it likes: the file is hashed once it is read
        try:
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
        except OSError:
            digest.whole = False


def read_text_file(path: str | os.PathLike, digest: ReadDigest | None = None) -> Iterator[tuple[int, Record]]:
    """A plain-text file is one document; its id is the file's path as named."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        if digest is not None:
            digest.whole = False
        yield 1, Quarantined(str(path), 1, "unreadable_file", f"unreadable file: {e.strerror or e}", "")
        return
    if digest is not None:
        digest.update(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        yield 1, Quarantined(str(path), 1, "invalid_utf8", f"invalid UTF-8 at byte {e.start}", raw.decode("utf-8", "backslashreplace"))
        return
    if not text.strip():
        yield 1, Quarantined(str(path), 1, "empty_text", "empty text", text)
        return
    yield 1, Document(path.as_posix(), text, {})


def _batched(pairs: Iterator[tuple[int, Record]], size: int = 1024) -> Iterator[tuple[list[int], list[Record]]]:
    """``(line, record)`` pairs in batches of ``size``, the form :func:`read_corpus_batches` takes."""
    while chunk := list(islice(pairs, size)):
        lines, records = zip(*chunk)
        yield list(lines), list(records)


_BATCHES = {"jsonl": jsonl_batches,
            "parquet": lambda path, digest: _batched(read_parquet(path, digest=digest)),
            "text": lambda path, digest: _batched(read_text_file(path, digest=digest))}


def read_documents(paths: Iterable[str | os.PathLike]) -> Iterator[Document]:
    """Only the valid documents of a corpus (for consumers of a filtered ``data/`` folder)."""
    return (r for r in read_corpus(paths) if isinstance(r, Document))
