"""The batch path of the JSONL reader: a block of whole lines decoded and checked in a few C calls.

Most lines of a corpus look alike: an object with a string ``id``, a non-blank string ``text`` and a ``meta``
of scalars, lists and objects nested three levels at most. A block of such lines is decoded by one msgspec call straight into documents, and
the checks on its ids, texts and meta run as maps over the block, with no Python bytecode per line. A block holding
anything else (a malformed line, a blank line, an extra top-level field, deeper meta, an integer beyond 64 bits,
a reserved id, a blank text) gives None, and the reader takes that block line by line through
:func:`fmaudit.corpus.records.parse_json_record`, the reference, which names what is wrong with each line.
``tests/test_corpus_blocks.py`` checks that both paths read the same documents from the same lines.
"""

from __future__ import annotations

import re
from operator import attrgetter, methodcaller
from typing import Annotated, Optional, Union

import msgspec

from fmaudit.corpus.records import DERIVED_SUFFIXES, Document

_decode_lines = msgspec.json.Decoder(Document).decode_lines  # exactly id, text and meta (optional): no other field
_has_text = re.compile(r"\S").search  # re's \s is str.isspace's set (tests/test_corpus_blocks.py checks)
_reserved = methodcaller("endswith", DERIVED_SUFFIXES)
_ids, _texts, _metas = attrgetter("id"), attrgetter("text"), attrgetter("meta")
# The per-line path parses with orjson, which reads integers up to 2**64 - 1 exactly and larger ones as floats,
# where msgspec reads them all exactly: the batch path takes the range of a signed 64-bit integer (what msgspec's
# bounds allow), and a block with any other integer in meta goes line by line.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Scalar = Union[str, _Int, float, bool, None]
_Nested1 = Union[str, _Int, float, bool, None, list[_Scalar], dict[str, _Scalar]]
_Nested2 = Union[str, _Int, float, bool, None, list[_Nested1], dict[str, _Nested1]]
_METAS = list[dict[str, _Nested2]]  # the metas the batch path takes: three levels at most, far within MAX_META_DEPTH


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
    try:
        msgspec.convert(list(map(_metas, records)), _METAS)  # checked in C (the copy it makes is dropped)
    except msgspec.ValidationError:
        return None
    return records
