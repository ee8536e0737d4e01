"""The bad-input zoo: every malformed-input kind fmaudit knows, run through ``fmaudit filter`` as a user would.

Each run must end in exit 0, 1 or 2 (never 3, an internal error), with no traceback on stderr; where it
runs, every record read must be in exactly one of data/, dropped/, held/ or quarantine/ (counted here from
the files, independently of the pipeline's own report).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import ROOT, long_text, write_policy


def fmaudit(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "fmaudit", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.read_text().splitlines()] \
        if folder.exists() else []


def _line(obj) -> bytes:
    return json.dumps(obj).encode()


def deep(levels: int):
    value: object = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


# (line bytes, what becomes of it: a quarantine kind, or "kept"/"dropped")
RECORDS: list[tuple[bytes, str]] = [
    (_line({"id": "ok-1", "text": long_text(1)}), "kept"),
    (_line({"id": "short", "text": "too short"}), "dropped"),
    (b'{"id": "bad", "text": "unterminated', "bad_json"),
    (_line({"id": "nt", "meta": {"x": 1}}), "missing_text"),
    (_line({"id": "ns", "text": ["a", "list"]}), "non_string_text"),
    (b'{"id": "utf", "text": "bad \xff\xfe bytes"}', "invalid_utf8"),
    (_line({"id": "empty", "text": "  \n "}), "empty_text"),
    (_line({"id": "ok-1", "text": long_text(2)}), "duplicate_id"),
    (_line(["a", "list", "record"]), "not_object"),
    (_line({"id": {"nested": 1}, "text": long_text(3)}), "bad_id"),
    (_line({"id": 1.5, "text": long_text(4)}), "bad_id"),
    (_line({"id": "m1", "text": long_text(5), "meta": [1, 2]}), "bad_meta"),
    (_line({"id": "m2", "text": long_text(6), "meta": "{not json"}), "bad_meta"),
    (_line({"id": "deep", "text": long_text(7), "meta": deep(300)}), "too_deep"),
    (_line({"id": "deep-extra", "text": long_text(8), "extra": deep(300)}), "too_deep"),
    (b'{"id": "deeper", "text": "x", "meta": ' + b"[" * 3000 + b"]" * 3000 + b"}", "too_deep"),
    (b'{"id": "nan", "text": "' + long_text(9).encode() + b'", "meta": {"score": NaN}}', "bad_json"),
    (b'{"id": "sur", "text": "lone \\ud800 surrogate"}', "bad_json"),
    (b'{"id": 1180591620717411303424, "text": "' + long_text(10).encode() + b'"}', "kept"),  # 2^70
    (_line({"id": "twin#cda", "text": long_text(11)}), "bad_id"),
    (_line({"id": "huge", "text": "word " * 2000}), "too_long"),
    (_line({"id": "crlf", "text": long_text(12)}) + b"\r", "kept"),
    (_line({"id": "ok-2", "text": long_text(13), "url": "https://example.org"}), "kept"),
]


def build_zoo(root: Path) -> dict[str, int]:
    """A corpus folder holding every record kind above, plus file-level kinds; returns the expected outcome
    counts (``read`` included)."""
    corpus = root / "corpus"
    corpus.mkdir()
    lines = [raw for raw, _ in RECORDS]
    (corpus / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + lines[0] + b"\n" + b"\n".join(lines[1:]) + b"\n")
    expected: dict[str, int] = {}
    for _, what in RECORDS:
        expected[what] = expected.get(what, 0) + 1
    # a second file: a duplicate of an id from the first file (cross-file), one valid record
    (corpus / "b.jsonl").write_bytes(_line({"id": "ok-2", "text": long_text(20)}) + b"\n"
                                     + _line({"id": "b-1", "text": long_text(21)}) + b"\n")
    expected["duplicate_id"] += 1
    expected["kept"] += 1
    (corpus / "c-empty.jsonl").write_bytes(b"")
    data = gzip.compress(b"".join(_line({"id": f"gz{i}", "text": long_text(i)}) + b"\n" for i in range(300)))
    (corpus / "d-truncated.jsonl.gz").write_bytes(data[: len(data) // 2])
    n_gz = sum(1 for _ in _readable_gzip_lines(corpus / "d-truncated.jsonl.gz"))
    expected["kept"] += n_gz
    expected["unreadable_file"] = 1
    _corrupt_parquet(corpus / "e-corrupt.parquet", rows=300, group=100)
    expected["kept"] += 200
    expected["unreadable_file"] += 1
    os.symlink("loop", corpus / "loop")  # a symlink loop inside a folder is skipped
    expected["read"] = sum(expected.values())
    return expected


def _readable_gzip_lines(path: Path):
    try:
        with gzip.open(path, "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    yield line
    except (EOFError, OSError):
        return


def _corrupt_parquet(path: Path, rows: int, group: int) -> None:
    """A Parquet file whose second row group's text column has a corrupt (snappy) data page."""
    table = pa.table({"id": [f"pq{i}" for i in range(rows)], "text": [long_text(i) for i in range(rows)]})
    pq.write_table(table, path, row_group_size=group, compression="snappy")
    col = pq.ParquetFile(path).metadata.row_group(1).column(1)
    data = bytearray(path.read_bytes())
    start = col.data_page_offset + col.total_compressed_size // 2
    for k in range(start, start + 64):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


def _policy(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "zoo.yaml", [{"stage": "min_length", "min_chars": 20, "min_words": 5}],
                        shard_size=7, samples=0, max_chars=5000, max_quarantine_fraction=0.5)


def test_every_bad_record_kind_is_quarantined_or_kept_and_accounted(tmp_path):
    expected = build_zoo(tmp_path)
    out = tmp_path / "out"
    run = fmaudit("filter", "--policy", _policy(tmp_path), tmp_path / "corpus", "--out", out, "--workers", "1",
                  "--no-progress")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    kept, dropped, held, quarantined = (rows(out / f) for f in ("data", "dropped", "held", "quarantine"))
    by_kind: dict[str, int] = {}
    for q in quarantined:
        by_kind[q["kind"]] = by_kind.get(q["kind"], 0) + 1
    want_kinds = {k: n for k, n in expected.items() if k not in ("read", "kept", "dropped")}
    assert by_kind == want_kinds
    assert (len(kept), len(dropped), len(held)) == (expected["kept"], expected["dropped"], 0)
    # the identity, from the files: every record read is in exactly one place
    assert len(kept) + len(dropped) + len(held) + len(quarantined) == expected["read"]
    counts = json.loads((out / "reports" / "pipeline.json").read_text())["counts"]
    assert counts["in"] == expected["read"] and counts["quarantined"] == len(quarantined)
    ids = [d["id"] for d in kept]
    assert len(ids) == len(set(ids))
    assert {"ok-1", "crlf", "1180591620717411303424"} <= set(ids)  # BOM line, CRLF line and a 2^70 id kept
    errors = {q["raw"][:q["raw"].index(",")]: q["error"] for q in quarantined if q["raw"]}
    assert "NaN is not a JSON value" in errors['{"id": "nan"']  # the true reason, not "lone surrogate"
    assert "pipeline.max_chars" in errors['{"id":"huge"']
    assert all(q["source"] and q["line"] != 0 for q in quarantined)
    # run again: a finished job is not redone, and nothing changes
    again = fmaudit("filter", "--policy", _policy(tmp_path), tmp_path / "corpus", "--out", out, "--workers", "1",
                    "--no-progress")
    assert again.returncode == 0 and "already complete" in again.stdout


def test_input_errors_exit_2_before_any_work(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text("".join(json.dumps({"id": f"d{i}", "text": long_text(i)}) + "\n"
                                            for i in range(30)))
    pq.write_table(pa.table({"id": ["x"], "body": ["no text column"]}), corpus / "z.parquet")
    out = tmp_path / "out"
    run = fmaudit("filter", "--policy", _policy(tmp_path), corpus, "--out", out, "--no-progress")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "z.parquet" in run.stderr and "'text'" in run.stderr
    assert not (out / "data").exists()  # checked before the first shard, not when the reader got there
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    run = fmaudit("filter", "--policy", _policy(tmp_path), tmp_path / "loop", "--out", tmp_path / "o2",
                  "--no-progress")
    assert run.returncode == 2 and "Traceback" not in run.stderr and "loop" in run.stderr
