"""Readers stream every format; every kind of malformed record is quarantined with its line."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from fmaudit.corpus import Document, Quarantined, ShardedJsonlWriter, read_corpus, read_documents, read_jsonl
from tests.conftest import long_text


def test_jsonl_and_gzip_with_every_malformed_kind(mixed_corpus):
    records = list(read_corpus([mixed_corpus]))
    docs = [r for r in records if isinstance(r, Document)]
    bad = {r.kind: r for r in records if isinstance(r, Quarantined)}
    assert [d.id for d in docs] == ["a", "b", "h"] + [f"z{i}" for i in range(10, 20)]
    assert set(bad) == {"bad_json", "missing_text", "non_string_text", "invalid_utf8", "empty_text", "duplicate_id"}
    lines = {kind: (q.source.rsplit("/", 1)[-1], q.line) for kind, q in bad.items()}
    assert lines == {"bad_json": ("one.jsonl", 3), "missing_text": ("one.jsonl", 4),
                     "non_string_text": ("one.jsonl", 5), "invalid_utf8": ("one.jsonl", 6),
                     "empty_text": ("one.jsonl", 7), "duplicate_id": ("one.jsonl", 8)}
    assert "\\xff" in bad["invalid_utf8"].raw  # the raw bytes are kept, escaped
    assert docs[2].meta == {"url": "https://example.org"}  # extra fields go to meta
    assert docs[3].meta == {"n": 10}


def test_parquet_reader(tmp_path):
    table = pa.table({"id": ["p1", "p2", "p3"], "text": [long_text(1), None, long_text(3)],
                      "meta": [json.dumps({"lang": "en"}), "{}", "{}"]})
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=2)
    records = list(read_corpus([tmp_path / "c.parquet"]))
    assert [type(r).__name__ for r in records] == ["Document", "Quarantined", "Document"]
    assert records[0].meta == {"lang": "en"}
    assert (records[1].kind, records[1].line) == ("missing_text", 2)


def test_text_folder_reader(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("Plain text document.\nSecond line.")
    (tmp_path / "t" / "b.txt").write_bytes(b"\xff\xfe broken")
    (tmp_path / "t" / "c.txt").write_text("")
    records = list(read_corpus([tmp_path / "t"]))
    assert isinstance(records[0], Document) and records[0].text.startswith("Plain text")
    assert [r.kind for r in records[1:]] == ["invalid_utf8", "empty_text"]


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    import gzip

    data = gzip.compress(b"".join(json.dumps({"id": str(i), "text": long_text(i)}).encode() + b"\n"
                                  for i in range(200)))
    (tmp_path / "t.jsonl.gz").write_bytes(data[: len(data) // 2])
    records = [r for _, r in read_jsonl(tmp_path / "t.jsonl.gz")]
    assert isinstance(records[-1], Quarantined) and records[-1].kind == "unreadable_file"
    assert sum(isinstance(r, Document) for r in records) > 0


def test_reader_streams(tmp_path):
    """The reader yields a record as soon as its line has arrived: from a pipe whose writer has sent two lines
    and waits, the first two documents come out before the rest exists."""
    import os
    import threading

    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    go_on = threading.Event()

    def writer():
        with open(fifo, "w") as f:
            for i in range(2):
                f.write(json.dumps({"id": str(i), "text": long_text(i)}) + "\n")
            f.flush()
            go_on.wait(30)
            for i in range(2, 5):
                f.write(json.dumps({"id": str(i), "text": long_text(i)}) + "\n")

    thread = threading.Thread(target=writer)
    thread.start()
    it = read_jsonl(fifo)
    first = [next(it)[1].id, next(it)[1].id]  # would block forever if the reader waited for the whole file
    assert not go_on.is_set() and first == ["0", "1"]
    go_on.set()
    assert [r.id for _, r in it] == ["2", "3", "4"]
    thread.join()


def test_sharded_writer(tmp_path):
    with ShardedJsonlWriter(tmp_path / "out", docs_per_shard=4, gzip_output=True) as w:
        for i in range(10):
            w.write(Document(str(i), long_text(i)))
    assert [p.name for p in w.paths] == ["part-00000.jsonl.gz", "part-00001.jsonl.gz", "part-00002.jsonl.gz"]
    assert [d.id for d in read_documents([tmp_path / "out"])] == [str(i) for i in range(10)]


def test_id_index_finds_duplicates_across_merges(monkeypatch):
    from fmaudit.corpus import IdIndex

    monkeypatch.setattr(IdIndex, "FLUSH", 100)
    index = IdIndex()
    assert all(index.add(f"id-{i}") for i in range(1000))
    assert len(index) == 1000 and sum(r.size for r in index._runs) >= 900 and len(index._runs) <= 4
    assert not any(index.add(f"id-{i}") for i in range(0, 1000, 7))
    assert index.add("id-1000")


def test_json_rows_of_fmaudit_files_name_file_and_line(tmp_path):
    import gzip

    import pytest

    from fmaudit.corpus import iter_json_rows
    from fmaudit.errors import InputError

    good = tmp_path / "rows.jsonl.gz"
    good.write_bytes(gzip.compress(b'{"a": 1}\n\n{"b": 2}\n'))
    assert list(iter_json_rows(good)) == [(1, {"a": 1}), (3, {"b": 2})]
    for name, body, message in (("bad.jsonl", b'{"a": 1}\n{oops\n', r"bad\.jsonl:2: not JSON"),
                                ("list.jsonl", b'{"a": 1}\n[1, 2]\n', r"list\.jsonl:2: not a JSON object")):
        (tmp_path / name).write_bytes(body)
        with pytest.raises(InputError, match=message):
            list(iter_json_rows(tmp_path / name))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:40])
    with pytest.raises(InputError, match=r"cut\.jsonl\.gz: cannot read"):
        list(iter_json_rows(cut))
    with pytest.raises(InputError, match=r"missing\.jsonl: cannot read"):
        list(iter_json_rows(tmp_path / "missing.jsonl"))


def test_read_digest_hashes_on_a_thread_what_was_read(monkeypatch):
    import gc
    import hashlib
    import threading

    from fmaudit.corpus import ReadDigest

    monkeypatch.setattr(ReadDigest, "HASH_CHUNK", 1000)
    blocks = [bytes([i]) * (300 + i) for i in range(40)]

    def hashers():
        return [t for t in threading.enumerate() if t.name == "fmaudit-read-hash"]

    digest = ReadDigest()
    for b in blocks:
        digest.update(memoryview(bytearray(b)))  # a view into a buffer the reader reuses
    assert len(hashers()) == 1
    assert digest.hexdigest() == hashlib.sha256(b"".join(blocks)).hexdigest() == digest.hexdigest()
    assert not hashers()
    abandoned = ReadDigest()
    for b in blocks:
        abandoned.update(b)
    del abandoned  # a reader given up on before its end: its thread ends too
    gc.collect()
    for t in hashers():
        t.join(5)
    assert not hashers()
