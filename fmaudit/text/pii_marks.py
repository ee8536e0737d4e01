"""What the pii stage writes, in one place, so later stages can leave it exactly as it is.

Token forms (the only ones the pii operators write):

* ``<TYPE>``: replace, and a pseudonymizer with no surrogate for the type;
* ``<TYPE:0123456789abcdef>``: hash (16 hex digits of a salted hash);
* ``<ENC:TYPE:PAYLOAD>``: encrypt (URL-safe base64, see :mod:`fmaudit.pii.cipher`).

Pseudonyms and masks look like ordinary text, so the pii stage also records the character span of every value
it rewrote in the document's meta (``meta["pii_spans"]``: sorted ``[start, end]`` pairs in the written text).
A stage that rewrites text protects :func:`protected_spans` and, if it changes lengths, carries the recorded
spans over with :func:`shift_spans`.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

META_KEY = "pii_spans"
_TYPE = r"[A-Z][A-Z0-9_]*"
ENCRYPTED = re.compile(rf"<ENC:({_TYPE}):([A-Za-z0-9_-]+)>")
HASHED = re.compile(rf"<({_TYPE}):([0-9a-f]{{16}})>")
TAGGED = re.compile(rf"<({_TYPE})>")
# Any token form, case-sensitive; ENC first so that its type is not read as a tag of its own.
TOKEN = re.compile(rf"<ENC:{_TYPE}:[A-Za-z0-9_-]+>|<{_TYPE}:[0-9a-f]{{16}}>|<{_TYPE}>")


def tag(entity_type: str) -> str:
    return f"<{entity_type}>"


def hashed_tag(entity_type: str, digest: str) -> str:
    return f"<{entity_type}:{digest[:16]}>"


def encrypted_tag(entity_type: str, payload: str) -> str:
    return f"<ENC:{entity_type}:{payload}>"


def recorded_spans(meta: Optional[dict]) -> list[tuple[int, int]]:
    """The spans the pii stage recorded in ``meta`` (none if it did not run or found nothing)."""
    return [(int(s), int(e)) for s, e in (meta or {}).get(META_KEY, ())]


def protected_spans(text: str, meta: Optional[dict] = None) -> list[tuple[int, int]]:
    """Sorted, merged spans of ``text`` that hold what the pii stage wrote: every token form, and the spans
    recorded in ``meta`` (those that still fit in the text)."""
    spans = [m.span() for m in TOKEN.finditer(text)] + [(s, e) for s, e in recorded_spans(meta) if e <= len(text)]
    return merge(spans)


def merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def shift_spans(spans: Iterable[tuple[int, int]], edits: Iterable[tuple[int, int, int]]) -> list[list[int]]:
    """``spans`` carried over to the text after ``edits``: each ``(start, end, new_length)`` replaced
    ``text[start:end]`` by ``new_length`` characters (sorted, disjoint, offsets in the old text). A span an
    edit touches is gone (what it held was removed or rewritten); the others move by the edits before them."""
    edits = sorted(edits)
    out: list[list[int]] = []
    k, delta = 0, 0
    for s, e in sorted(spans):
        while k < len(edits) and edits[k][1] <= s:
            delta += edits[k][2] - (edits[k][1] - edits[k][0])
            k += 1
        if k < len(edits) and edits[k][0] < e:
            continue  # overlaps an edit
        out.append([s + delta, e + delta])
    return out
