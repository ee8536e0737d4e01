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
from typing import Optional

import msgspec

from fmaudit.corpus.records import DERIVED_SUFFIXES, Document

_decode_lines = msgspec.json.Decoder(Document).decode_lines  # its fields' types: the lines the batch path takes
_has_text = re.compile(r"\S").search  # re's \s is str.isspace's set (tests/test_corpus_blocks.py checks)
_reserved = methodcaller("endswith", DERIVED_SUFFIXES)
_ids, _texts = attrgetter("id"), attrgetter("text")


def decode_block(block: bytes, lines: int) -> Optional[list[Document]]:
    """The documents of ``block``, ``lines`` whole JSONL lines (the last one may lack its newline), one per
    line; None when any line is not an ordinary record (the caller then reads the block line by line)."""
    try:
        records = _decode_lines(block)
    except (msgspec.MsgspecError, UnicodeDecodeError, ValueError):
        return None
    if len(records) != lines:  # a blank line: no record, and the line numbers would shift
        return None
    if not all(map(_has_text, map(_texts, records))) or any(map(_reserved, map(_ids, records))):
        return None
    return records
