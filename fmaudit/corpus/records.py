"""Documents and quarantine records, and turning one raw JSON line or object into one of them (every malformed
kind named: bad JSON, invalid UTF-8, not an object, missing or non-string text, empty text, bad id or meta, meta
nested too deep, a reserved derived id)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Union

import msgspec
import orjson

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


DERIVED_SUFFIXES = tuple("#" + tag for tag in DERIVED_TAGS)


def derived_id(parent_id: str, tag: str) -> str:
    """The id of a document a stage derives from ``parent_id`` (``tag`` in :data:`DERIVED_TAGS`)."""
    return f"{parent_id}#{tag}"


# The metas the reader's batch path decodes (fmaudit.corpus.blocks): scalars, lists and objects nested three
# levels at most (far within MAX_META_DEPTH), and integers within 64 bits only. The per-line path parses with
# orjson, which reads integers up to 2**64 - 1 exactly and larger ones as floats, where msgspec reads them all
# exactly: a line with any other integer in meta is left to the per-line path, which decides what it is.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Scalar = Union[str, _Int, float, bool, None]
_Nested1 = Union[str, _Int, float, bool, None, list[_Scalar], dict[str, _Scalar]]
BatchMeta = dict[str, Union[str, _Int, float, bool, None, list[_Nested1], dict[str, _Nested1]]]


class Document(msgspec.Struct, forbid_unknown_fields=True):
    """One document of the corpus. Extra top-level fields of an input record are kept in ``meta``.

    A msgspec Struct: millions are built per job, in C, and written without an intermediate dict. The field
    types are what the reader's batch path decodes in one call (exactly these fields, ``meta`` optional and of
    :data:`BatchMeta`); nothing is checked when a document is built in code, and a document the per-line path
    reads, or a stage writes, may hold any JSON value in ``meta``."""

    id: str
    text: str
    meta: BatchMeta = {}  # msgspec gives each document its own empty dict

    def to_json(self) -> dict:
        return {"id": self.id, "text": self.text, "meta": self.meta}


@dataclass(slots=True)
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


_encode = msgspec.json.Encoder().encode


def dumps(obj: dict) -> str:
    """The one JSON encoding used for every JSONL line fmaudit writes (stable, compact, UTF-8, one line; msgspec's,
    as :func:`fmaudit.corpus.writers.write_jsonl` uses)."""
    return _encode(obj).decode("utf-8")


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
def parse_json_record(raw: bytes, source: str, lineno: int) -> Record:
    """Turn one JSONL line into a Document, or a Quarantined record saying what is wrong."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return diagnose_json_error(raw, source, lineno, e)
    return record_from_object(obj, source, lineno, raw)


class _NotJsonConstant(ValueError):
    pass


def _reject_constant(name: str):
    raise _NotJsonConstant(name)


def diagnose_json_error(raw: bytes, source: str, lineno: int, error: orjson.JSONDecodeError) -> Quarantined:
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
                and not doc_id.endswith(DERIVED_SUFFIXES) and _flat(meta)):
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
    if doc_id.endswith(DERIVED_SUFFIXES) and derived_id(str(meta.get("counterfactual_of")), "cda") != doc_id:
        return bad("bad_id", f"id {doc_id!r} ends in a suffix reserved for documents stages add "
                             f"({', '.join(DERIVED_SUFFIXES)})")
    return Document(doc_id, text, meta)


def _json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number with a fraction" if value == value and value not in (float("inf"), float("-inf")) \
            else "not a finite number"
    return {dict: "an object", list: "an array", int: "an integer", str: "a string"}.get(type(value), type(value).__name__)
