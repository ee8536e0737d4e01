"""The batch path of the JSONL reader: a block of whole lines decoded and checked in a few C calls.

Most lines of a corpus look alike: an object with a string ``id``, a non-blank string ``text`` and a ``meta``
of scalars, lists and objects nested three levels at most (:data:`fmaudit.corpus.records.BatchMeta`). A block of such lines is decoded by one msgspec call straight into documents, and
the checks on its ids, texts and meta run as maps over the block, with no Python bytecode per line. A block holding
anything else (a malformed line, a blank line, an extra top-level field, deeper meta, an integer beyond 64 bits,
a reserved id, a blank text) gives None, and the reader takes that block line by line through
:func:`fmaudit.corpus.records.parse_json_record`, the reference, which names what is wrong with each line.
``tests/test_corpus_blocks.py`` checks that both paths read the same documents from the same lines.
"""

from __future__ import annotations

import re
from operator import attrgetter, methodcaller
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

import msgspec

from fmaudit.corpus.records import DERIVED_SUFFIXES, Document

_decode_lines = msgspec.json.Decoder(Document).decode_lines  # its fields' types: the lines the batch path takes
_has_text = re.compile(r"\S").search  # re's \s is str.isspace's set (tests/test_corpus_blocks.py checks)
_reserved = methodcaller("endswith", DERIVED_SUFFIXES)
ids_of, texts_of = attrgetter("id"), attrgetter("text")


def decode_block(block: bytes, lines: Optional[int] = None) -> Optional[list[Document]]:
    """The documents of ``block``, whole JSONL lines (the last one may lack its newline), one per line that is
    not blank; None when any line is not an ordinary record (the caller then reads the block line by line).
    Given the block's number of ``lines``, a block with a blank line gives None too."""
    try:
        records = _decode_lines(block)
    except (msgspec.MsgspecError, UnicodeDecodeError, ValueError):
        return None
    if lines is not None and len(records) != lines:  # a blank line: no record
        return None
    if not all(map(_has_text, map(texts_of, records))) or any(map(_reserved, map(ids_of, records))):
        return None
    return records


class LineCounter:
    """The line number at a byte offset of a plain file, its newlines counted only when first asked: a file in
    which no record needs its line named (no quarantine, no line-by-line block) is never counted. Offsets
    asked for in order are counted once each; an earlier one counts again from the start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Optional[BinaryIO] = None
        self._offset, self._line = 0, 1

    def line_at(self, offset: int) -> int:
        if self._file is None or offset < self._offset:
            self.close()
            self._file, self._offset, self._line = open(self.path, "rb"), 0, 1
        while self._offset < offset:
            chunk = self._file.read(min(1 << 20, offset - self._offset))
            if not chunk:  # the file shrank while it was read: the job's read hashes say so
                break
            self._line += chunk.count(b"\n")
            self._offset += len(chunk)
        return self._line

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class BlockLines:
    """The line numbers of a decoded block's documents, found when first needed: the block's first line from
    the file's :class:`LineCounter`, then each line of the block that is not blank."""

    __slots__ = ("_block", "_offset", "_counter", "_lines")

    def __init__(self, block: bytes, offset: int, counter: LineCounter) -> None:
        self._block, self._offset, self._counter = block, offset, counter
        self._lines: Optional[list[int]] = None

    def __iter__(self) -> Iterator[int]:
        if self._lines is None:
            first = self._counter.line_at(self._offset)
            self._lines = [n for n, line in enumerate(self._block.split(b"\n"), first) if line.strip(b" \t\r")]
        return iter(self._lines)
