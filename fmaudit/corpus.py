"""Documents, streaming corpus readers, JSONL writers and quarantine records.

A document is ``{"id": str, "text": str, "meta": {...}}``. Readers stream: they hold one record at a
time, whatever the size of the corpus. A record that cannot become a document (bad JSON, missing or
non-string text, invalid UTF-8, empty text, a bad id or meta, meta nested too deep, text over the size
limit, duplicate id, an unreadable stretch of a file) is never fatal: the reader yields a
:class:`Quarantined` record naming the source file, the line (or row) and the error.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, Union

import numpy as np
import orjson

from fmaudit.errors import InputError

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
TEXT_SUFFIXES = (".txt", ".md")
UTF8_BOM = b"\xef\xbb\xbf"
# Deepest nesting of a record's meta that is accepted: orjson writes at most 254 levels and pickling between
# workers recurses per level, so deeper records are quarantined (``too_deep``) rather than crash a job.
MAX_META_DEPTH = 100
# Suffixes of the ids of documents stages add (a cda twin of "x" is "x#cda"). An input id ending in one is
# quarantined unless the record is itself such a twin from an earlier run, so added ids never collide with
# input ids.
DERIVED_TAGS = ("cda",)


def derived_id(parent_id: str, tag: str) -> str:
    """The id of a document a stage derives from ``parent_id`` (``tag`` in :data:`DERIVED_TAGS`)."""
    return f"{parent_id}#{tag}"


@dataclass
class Document:
    """One document of the corpus. Extra top-level fields of an input record are kept in ``meta``."""

    id: str
    text: str
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"id": self.id, "text": self.text, "meta": self.meta}


@dataclass
class Quarantined:
    """A record that could not become a document; written to ``quarantine/`` with its origin."""

    source: str
    line: int
    kind: str  # bad_json, invalid_utf8, not_object, missing_text, non_string_text, empty_text, bad_id, bad_meta,
    #            too_deep, too_long, duplicate_id, unreadable_file
    error: str
    raw: str

    def to_json(self) -> dict:
        return {"source": self.source, "line": self.line, "kind": self.kind, "error": self.error, "raw": self.raw}


Record = Union[Document, Quarantined]


def dumps(obj: dict) -> str:
    """The one JSON encoding used for every JSONL line fmaudit writes (stable, compact, UTF-8, one line)."""
    return orjson.dumps(obj).decode("utf-8")


def id_hash64(text: str) -> int:
    """A stable 64-bit hash of a document id (or any string): the one used for id sets and for seeded,
    shard-independent per-document choices (``id_hash64(x) / 2**64`` is uniform in [0, 1))."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# Files a folder may hold beside its corpus, never read as documents when the folder is named
# (``fmaudit demo-corpus`` writes truth.jsonl beside corpus/); a file named directly is always read.
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
            for f in sorted(f for f in p.rglob("*") if f.is_file() and _kind(f) is not None and not excluded(f)):
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
            if _kind(p) is None:
                raise InputError(f"{p}: unknown corpus format (expected .jsonl, .jsonl.gz, .parquet or .txt)")
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    for f in files:
        if _kind(f) == "parquet":
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


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def read_corpus(paths: Iterable[str | os.PathLike], max_chars: int | None = None,
                hashes: dict[str, str | None] | None = None) -> Iterator[Record]:
    """Stream documents and quarantined records from files and folders, in a deterministic order.

    Duplicate ids across all inputs are quarantined (the first occurrence is kept), and so are documents
    longer than ``max_chars`` characters (``too_long``). Given ``hashes``, the sha256 of the bytes each file's
    reader consumed is stored there under the file's path once the file is read (None if the file could not
    be read to its end), so a caller can tell whether what was read is what it recorded.
    """
    seen = IdIndex()
    for path in expand_inputs(paths):
        kind = _kind(path)
        digest = ReadDigest() if hashes is not None else None
        for line, rec in _READERS[kind](path, digest=digest):
            if isinstance(rec, Document):
                if max_chars is not None and len(rec.text) > max_chars:
                    rec = Quarantined(str(path), line, "too_long", f"text has {len(rec.text)} characters, over "
                                      f"pipeline.max_chars ({max_chars})", dumps(rec.to_json()))
                elif not seen.add(rec.id):
                    rec = Quarantined(str(path), line, "duplicate_id", f"duplicate id {rec.id!r}",
                                      dumps(rec.to_json()))
            yield rec
        if hashes is not None:
            hashes[str(path)] = digest.hexdigest() if digest.whole else None


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
    """sha256 of the bytes a reader consumed; ``whole`` is False when the file could not be read to its end."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.whole = True

    def update(self, block) -> None:
        self._h.update(block)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class _HashingReader:
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


def _lines(f, digest) -> Iterator[bytes]:
    """The lines of binary file ``f`` (plain, or a gzip decoder over a hashing reader), read in large blocks;
    a plain file's bytes go into ``digest`` as they are read."""
    rest = b""
    read = f.read1  # what is there now (a pipe's first lines, what decodes before a gzip truncation), <= 1 MiB
    while block := read(1 << 20):
        if digest is not None:
            digest.update(block)
        lines = (rest + block).split(b"\n") if rest else block.split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


class IdIndex:
    """Set of document ids seen so far, kept as 8-byte digests: the one piece of reader state that grows
    with the corpus. Recent digests sit in a small Python set; every 2^18 they become a sorted numpy run, and
    runs of similar size are merged (as in a log-structured merge tree), so the cost is about 8 bytes per
    document (800 MB per 100M documents) and each lookup searches a logarithmic number of runs."""

    FLUSH = 1 << 18

    def __init__(self) -> None:
        self._recent: set[int] = set()
        self._runs: list[np.ndarray] = []

    def add(self, doc_id: str) -> bool:
        """Record ``doc_id``; False if it was already there."""
        key = id_hash64(doc_id)
        if key in self._recent:
            return False
        if self._runs:
            k = np.uint64(key)
            for run in self._runs:
                i = run.searchsorted(k)
                if i < run.size and run[i] == k:
                    return False
        self._recent.add(key)
        if len(self._recent) >= self.FLUSH:
            self._flush()
        return True

    def _flush(self) -> None:
        run = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        run.sort()
        self._runs.append(run)
        self._recent = set()
        while len(self._runs) > 1 and self._runs[-2].size <= 2 * self._runs[-1].size:
            last = self._runs.pop()
            self._runs[-1] = np.union1d(self._runs[-1], last)

    def __len__(self) -> int:
        return len(self._recent) + sum(int(r.size) for r in self._runs)


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_jsonl(path: str | os.PathLike, digest: "ReadDigest | None" = None) -> Iterator[tuple[int, Record]]:
    """Stream ``(line, record)`` pairs of a JSONL file (plain or gzip), a block of lines at a time; the file's
    bytes go into ``digest`` as they are read."""
    path = Path(path)
    source = str(path)
    try:
        raw_file = open(path, "rb")
    except OSError as e:
        yield -1, Quarantined(source, -1, "unreadable_file", f"unreadable file: {e.strerror or e}", "")
        if digest is not None:
            digest.whole = False
        return
    with raw_file:
        gz = path.name.lower().endswith(".gz")
        hashing = _HashingReader(raw_file, digest) if gz and digest is not None else raw_file
        f = gzip.GzipFile(fileobj=hashing, mode="rb") if gz else raw_file
        try:
            lines = enumerate(_lines(f, None if gz else digest), 1)
            for lineno, raw in lines:  # the first line, which may start with a byte-order mark
                raw = raw[3:] if raw.startswith(UTF8_BOM) else raw
                if raw.strip():
                    yield lineno, parse_json_record(raw, source, lineno)
                break
            for lineno, raw in lines:
                if raw.strip():
                    yield lineno, parse_json_record(raw, source, lineno)
        except (OSError, EOFError) as e:
            # A truncated or corrupt gzip stream: what was read stays; the rest is one quarantine record.
            yield -1, Quarantined(source, -1, "unreadable_file", f"unreadable file: {e}", "")
            try:
                if isinstance(hashing, _HashingReader):
                    hashing.drain()  # the compressed bytes past the error still belong to the file's hash
                elif digest is not None:
                    digest.whole = False
            except OSError:
                digest.whole = False


def iter_json_rows(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """``(line, row)`` of each JSON object in a JSONL file (plain or gzip) that fmaudit or its user wrote for
    fmaudit (side outputs, ground truth, metrics), not a corpus: here a bad line is an InputError naming the
    file and the line, and an unreadable file one naming the file."""
    path = Path(path)
    try:
        with _open_binary(path) as f:
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


def parse_json_record(raw: bytes, source: str, lineno: int) -> Record:
    """Turn one JSONL line into a Document, or a Quarantined record saying what is wrong."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return _diagnose(raw, source, lineno, e)
    return record_from_object(obj, source, lineno, raw)


class _NotJsonConstant(ValueError):
    pass


def _reject_constant(name: str):
    raise _NotJsonConstant(name)


def _diagnose(raw: bytes, source: str, lineno: int, error: orjson.JSONDecodeError) -> Quarantined:
    """Why a line is not JSON, in words (the slow path, taken only for bad lines)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Quarantined(source, lineno, "invalid_utf8", f"invalid UTF-8 at byte {e.start}",
                           raw.decode("utf-8", "backslashreplace").rstrip("\n"))
    kind = "bad_json"
    if error.msg.startswith("depth limit"):
        kind, msg = "too_deep", f"record nests deeper than the JSON parser's limit: {error.msg}"
    else:
        try:
            json.loads(line, parse_constant=_reject_constant)
            msg = "bad JSON: not representable as UTF-8 text (lone surrogate escape)"
        except _NotJsonConstant as e:
            msg = f"bad JSON: {e.args[0]} is not a JSON value (RFC 8259 has no NaN or Infinity)"
        except json.JSONDecodeError as e:
            msg = f"bad JSON: {e.msg} at column {e.colno}"
        except RecursionError:
            kind, msg = "too_deep", "record nests too deep to parse"
    return Quarantined(source, lineno, kind, msg, line.rstrip("\n"))


def _deeper_than(value, limit: int) -> bool:
    """Whether ``value`` (a decoded JSON value) nests more than ``limit`` containers deep."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _exact_id(raw: bytes | None, doc_id: float) -> int | None:
    """The exact integer behind an id orjson decoded as a float (integers beyond 64 bits), else None."""
    if raw is None or doc_id != doc_id or doc_id in (float("inf"), float("-inf")) or doc_id != int(doc_id):
        return None
    value = json.loads(raw).get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_from_object(obj, source: str, lineno: int, raw: bytes | None = None) -> Record:
    """Validate a decoded record (from JSON or a Parquet row) and build a Document."""
    if type(obj) is dict and len(obj) == 3:  # the common case, checked in a few type tests
        text, doc_id, meta = obj.get("text"), obj.get("id"), obj.get("meta")
        if (type(text) is str and type(doc_id) is str and type(meta) is dict and text and not text.isspace()
                and not doc_id.endswith(_DERIVED_SUFFIXES) and _flat(meta)):
            return Document(doc_id, text, meta)
    return _validate(obj, source, lineno, raw)


def _flat(meta: dict) -> bool:
    """No object or array among meta's values (so it cannot nest too deep)."""
    for value in meta.values():
        if type(value) is dict or type(value) is list:
            return False
    return True


def _validate(obj, source: str, lineno: int, raw: bytes | None) -> Record:
    """Every check of :func:`record_from_object`, with the reason for a record that fails one."""

    def bad(kind: str, msg: str) -> Quarantined:
        text = raw.decode("utf-8", "backslashreplace") if raw is not None else dumps(obj)
        return Quarantined(source, lineno, kind, msg, text.rstrip("\n"))

    if not isinstance(obj, dict):
        return bad("not_object", f"record is a JSON {type(obj).__name__}, not an object")
    if "text" not in obj or obj["text"] is None:
        return bad("missing_text", "missing field 'text'")
    text = obj["text"]
    if not isinstance(text, str):
        return bad("non_string_text", f"field 'text' is {type(text).__name__}, not a string")
    if not text.strip():
        return bad("empty_text", "empty text")
    doc_id = obj.get("id")
    if doc_id is None:
        doc_id = f"{Path(source).name}:{lineno}"
    elif isinstance(doc_id, float) and (exact := _exact_id(raw, doc_id)) is not None:
        doc_id = str(exact)  # an integer beyond 64 bits: valid JSON, kept digit for digit
    elif isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        return bad("bad_id", f"field 'id' is {_json_type(doc_id)}, not a string or an integer")
    meta = obj.get("meta", obj.get("metadata", {}))
    if meta is None:
        meta = {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta, parse_constant=_reject_constant)
        except (json.JSONDecodeError, _NotJsonConstant):
            return bad("bad_meta", "field 'meta' is a string that is not JSON")
        except RecursionError:
            return bad("too_deep", "field 'meta' is a JSON string nesting too deep to parse")
    if not isinstance(meta, dict):
        return bad("bad_meta", f"field 'meta' is {_json_type(meta)}, not an object")
    if len(obj) > 3 or (len(obj) == 3 and "meta" not in obj):  # extra top-level fields go to meta
        extra = {k: v for k, v in obj.items() if k not in ("id", "text", "meta", "metadata")}
        meta = {**extra, **meta}
    if meta and _deeper_than(meta, MAX_META_DEPTH):
        return bad("too_deep", f"meta nests more than {MAX_META_DEPTH} levels deep")
    doc_id = doc_id if isinstance(doc_id, str) else str(doc_id)
    if doc_id.endswith(_DERIVED_SUFFIXES) and derived_id(str(meta.get("counterfactual_of")), "cda") != doc_id:
        return bad("bad_id", f"id {doc_id!r} ends in a suffix reserved for documents stages add "
                             f"({', '.join(_DERIVED_SUFFIXES)})")
    return Document(doc_id, text, meta)


_DERIVED_SUFFIXES = tuple("#" + tag for tag in DERIVED_TAGS)


def _json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number with a fraction" if value == value and value not in (float("inf"), float("-inf")) \
            else "not a finite number"
    return {dict: "an object", list: "an array", int: "an integer", str: "a string"}.get(type(value), type(value).__name__)


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


_READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "text": read_text_file}


def read_documents(paths: Iterable[str | os.PathLike]) -> Iterator[Document]:
    """Only the valid documents of a corpus (for consumers of a filtered ``data/`` folder)."""
    return (r for r in read_corpus(paths) if isinstance(r, Document))


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write rows as JSONL (gzip when the name ends in .gz, reproducibly: no timestamp); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "wb", buffering=1 << 20) as raw:
        f = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if path.name.endswith(".gz") else raw
        for row in rows:
            f.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            n += 1
        if f is not raw:
            f.close()
    return n


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
