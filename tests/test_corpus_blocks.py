"""The JSONL reader's batch path (fmaudit.corpus.blocks) reads what the per-line path, the reference, reads."""

from __future__ import annotations

import gzip
import random
import sys

import orjson
import pytest

from fmaudit.corpus import Document, IdIndex, Quarantined, dumps, parse_json_record, read_corpus, read_jsonl, write_jsonl
from fmaudit.corpus import inputs
from fmaudit.corpus.blocks import BlockLines, LineCounter, _has_text, decode_block
from fmaudit.corpus.readers import jsonl_batches

SRC = "c.jsonl"

# Lines of every shape: ordinary ones the batch path takes, and every kind it must leave to the per-line path.
LINES = [
    b'{"id":"a","text":"plain","meta":{"s":"x","i":3,"f":1.5,"b":true,"n":null}}',
    b'{"id":"a","text":"no meta"}',
    b'{"text":"fields in another order","meta":{},"id":"a"}',
    b'{ "id" : "a" , "text" : "spaces" }\r',
    '{"id":"é","text":"ünïcödé 😀 中文","meta":{"k":"\u2028"}}'.encode(),
    rb'{"id":"a","text":"escapes \" \\ \n \t \u00e9 \ud83d\ude00 \u0000"}',
    b'{"id":"a","text":"dup keys","text":"the last wins","meta":{"k":1,"k":2}}',
    b'{"id":"a","text":"x","meta":{"big":9223372036854775807,"neg":-9223372036854775808}}',
    b'{"id":"a","text":"x","meta":{"big":9223372036854775808}}',
    b'{"id":"a","text":"x","meta":{"big":18446744073709551615}}',
    b'{"id":"a","text":"x","meta":{"big":1180591620717411303424}}',
    b'{"id":"a","text":"x","meta":{"f":1e-400,"g":-0.0,"h":5e-324,"j":1.7976931348623157e308}}',
    b'{"id":"a","text":"x","meta":{"f":1e400}}',
    b'{"id":"a","text":"x","meta":{"f":NaN}}',
    b'{"id":"a","text":"x","meta":{"nested":{"k":1}}}',
    b'{"id":"a","text":"x","meta":{"list":[1,2]}}',
    b'{"id":"a","text":"x","meta":{"a":[{"b":1},[2,"c"]],"d":{"e":[null,true,1.5]}}}',
    b'{"id":"a","text":"x","meta":{"a":[[[1]]]}}',
    b'{"id":"a","text":"x","meta":{"a":{"b":{"c":{}}}}}',
    b'{"id":"a","text":"x","meta":{"a":[{"b":18446744073709551615}]}}',
    b'{"id":"a","text":"x","metadata":{"k":1}}',
    b'{"id":"a","text":"x","extra":1}',
    b'{"id":"a","text":"x","meta":null}',
    b'{"id":"a","text":"x","meta":"{\\"k\\": 1}"}',
    b'{"id":"a","text":"x","meta":[1]}',
    b'{"id":7,"text":"integer id"}',
    b'{"id":1180591620717411303424,"text":"id beyond 64 bits"}',
    b'{"id":true,"text":"x"}',
    b'{"id":null,"text":"no id"}',
    b'{"text":"no id at all"}',
    b'{"id":"a#cda","text":"a reserved id"}',
    b'{"id":"p#cda","text":"a twin","meta":{"counterfactual_of":"p"}}',
    b'{"id":"a","text":""}',
    b'{"id":"a","text":"   \\t\\n "}',
    '{"id":"a","text":"\u3000\u00a0\u2029"}'.encode(),
    '{"id":"a","text":"\u200b"}'.encode(),  # a zero-width space is not whitespace to str.isspace
    b'{"id":"a","text":null}',
    b'{"id":"a","text":5}',
    b'{"id":"a"}',
    rb'{"id":"a","text":"lone \ud800 surrogate"}',
    b'{"id":"a","text":"bad \xff utf-8"}',
    b'{"id":"a","text":"x"} {"id":"b","text":"y"}',
    b'{"id":"a","text":"x"',
    b'[1, 2]',
    b'"a string"',
    b'not json at all',
]


def _reference(raw: bytes, line: int = 1):
    return parse_json_record(raw, SRC, line)


@pytest.mark.parametrize("raw", LINES, ids=range(len(LINES)))
def test_a_block_of_one_line_is_read_as_the_per_line_path_reads_it(raw):
    docs = decode_block(raw + b"\n", 1)
    reference = _reference(raw)
    if docs is not None:
        assert type(reference) is Document and docs == [reference]


def test_the_batch_path_takes_ordinary_lines_and_leaves_the_rest():
    taken = {i for i, raw in enumerate(LINES) if decode_block(raw + b"\n", 1) is not None}
    assert [LINES[i] for i in sorted(taken)] == [LINES[i] for i in (0, 1, 2, 3, 4, 5, 6, 7, 11, 14, 15, 16, 35)]
    # a twin id (31) is valid, but left to the per-line path, as are metas nested deeper than three levels


def test_random_ordinary_records_agree_with_the_per_line_path():
    rng = random.Random(0)
    alphabet = "ab z\u00e9\u4e2d\U0001f600\"\\\n\t\x00\u2028"
    values = [lambda: rng.random() * 10 ** rng.randint(-300, 300), lambda: rng.randint(-2**63, 2**63 - 1),
              lambda: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))), lambda: rng.random() < 0.5,
              lambda: None, lambda: float(rng.randint(-10**6, 10**6)),
              lambda: [rng.randint(-9, 9), {"k": rng.random()}, [None, "s"]], lambda: {"x": [1.5, "z"], "y": {"z": None}}]
    lines = []
    for i in range(2000):
        meta = {f"k{j}": rng.choice(values)() for j in range(rng.randint(0, 4))}
        lines.append(orjson.dumps({"id": f"d{i}", "text": "t" + "".join(rng.choice(alphabet) for _ in range(9)),
                                   "meta": meta}))
    block = b"\n".join(lines) + b"\n"
    docs = decode_block(block, len(lines))
    assert docs is not None
    assert docs == [_reference(raw, i) for i, raw in enumerate(lines, 1)]


def test_regex_whitespace_is_str_isspace():
    """The batch path's blank-text test (``\\S``) agrees with the per-line path's ``str.isspace`` everywhere."""
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        assert bool(_has_text(c)) == (not c.isspace()), hex(cp)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_files_read_with_every_line_number_whatever_the_blocks(tmp_path, monkeypatch, gz):
    """A file of ordinary blocks, blank lines, bad lines and a line longer than a read block: the records and line
    numbers are those of reading it one line at a time; most of it takes the batch path. (A plain file's lines are
    counted only where a number is needed, a gzip file's as it is read.)"""
    monkeypatch.setattr(inputs, "READ_BLOCK", 1 << 16)  # blocks of about 400 lines here
    rng = random.Random(1)
    lines = [orjson.dumps({"id": f"d{i}", "text": "word " * rng.randint(1, 60), "meta": {"n": i}})
             for i in range(6000)]
    for at, raw in ((5, b""), (17, b"   "), (2500, LINES[17]), (4000, LINES[39]), (4100, b"\r"),
                    (5000, orjson.dumps({"id": "long", "text": "x" * 300_000}))):
        lines.insert(at, raw)
    path = tmp_path / ("c.jsonl.gz" if gz else "c.jsonl")
    content = b"\xef\xbb\xbf" + b"\n".join(lines)  # a byte-order mark, no final newline
    path.write_bytes(gzip.compress(content, mtime=0) if gz else content)
    got = list(read_jsonl(path))
    want = [(n, _reference(raw[3:] if n == 1 else raw, n)) for n, raw in enumerate([b"\xef\xbb\xbf" + lines[0]] +
                                                                                  lines[1:], 1) if raw.strip()]
    want = [(n, Quarantined(str(path), n, r.kind, r.error, r.raw) if type(r) is Quarantined else r) for n, r in want]
    assert got == want
    batches = list(jsonl_batches(path))
    fast = sum(len(records) for lines_, records in batches if type(lines_) in (range, BlockLines))
    assert fast > 0.6 * len(got)  # each odd line sends its block of about 400 lines down the per-line path


def test_duplicate_ids_and_long_texts_in_an_ordinary_block_are_found(tmp_path):
    path = tmp_path / "c.jsonl"
    rows = [{"id": f"d{i}", "text": "ok"} for i in range(50)] + [{"id": "d3", "text": "again"},
                                                                  {"id": "big", "text": "y" * 100}]
    path.write_bytes(b"\n \n" + b"".join(orjson.dumps(r) + b"\n\r\n" for r in rows))  # blank lines between
    records = list(read_corpus([path], max_chars=50))
    kinds = [(r.line, r.kind) for r in records if type(r) is Quarantined]
    assert kinds == [(103, "duplicate_id"), (105, "too_long")]
    assert sum(type(r) is Document for r in records) == 50


@pytest.mark.parametrize("content", [b"\n\n  \n", b"\r\n" * 100_000, b"\n" * 300_000 + b'{"id":"a","text":"x"}'],
                         ids=["blank", "many-crlf", "blank-block-then-one"])
def test_blocks_of_blank_lines_hold_no_record(tmp_path, content):
    """A block of blank lines only decodes to no document (and is then checked as a batch of none)."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(content)
    records = list(read_corpus([path], max_chars=10))
    assert [(type(r), getattr(r, "id", None)) for r in records] == ([(Document, "a")] if b"{" in content else [])
    if b"{" in content:
        assert [line for line, _ in read_jsonl(path)] == [300_001]


def test_id_index_add_all_records_all_or_nothing(monkeypatch):
    monkeypatch.setattr(IdIndex, "FLUSH", 8)
    index = IdIndex()
    assert index.add_all([f"a{i}" for i in range(10)])  # flushed into a sorted run
    assert len(index) == 10
    assert not index.add_all(["new1", "a3"])  # a3 is in a run
    assert not index.add_all(["new1", "new1"])  # twice in the batch
    assert index.add_all(["new1", "new2"]) and len(index) == 12
    assert not index.add_all(["new2", "new3"])  # new2 is recent
    assert index.add("new3") and not index.add("a9") and len(index) == 13


def test_documents_and_their_rows_are_written_alike(tmp_path):
    docs = [Document("a", "t\u00e9\n", {"f": 1e300, "i": 2**70, "s": None}), Document("b", "u", {})]
    write_jsonl(tmp_path / "d.jsonl", docs)
    write_jsonl(tmp_path / "r.jsonl", [d.to_json() for d in docs])
    written = (tmp_path / "d.jsonl").read_bytes()
    assert written == (tmp_path / "r.jsonl").read_bytes()
    assert written == "".join(dumps(d.to_json()) + "\n" for d in docs).encode()
    assert [orjson.loads(x) for x in written.splitlines()][0]["meta"] == {"f": 1e300, "i": 2.0 ** 70, "s": None}


def test_line_counter_counts_each_byte_once_and_goes_back_when_asked(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"a\nb\n\nc\n" * 1000)
    counter = LineCounter(path)
    assert [counter.line_at(o) for o in (0, 2, 4, 5, 8, 8 * 1000)] == [1, 2, 3, 4, 5, 4001]
    assert counter.line_at(4) == 3  # earlier: counted again from the start
    counter.close()
    assert counter.line_at(10) == 6
