"""From presidio's findings to the spans that are rewritten: no overlaps, names with their titles."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Span:
    """One finding kept for rewriting, in the original text's coordinates."""

    start: int
    end: int
    entity_type: str
    score: float


_TITLE_BEFORE = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Rev|Fr)\.?[ \t]+)$")
_SUFFIX_AFTER = re.compile(r"^,?[ \t]+(?:Jr\.?|Sr\.?|I{2,3}|IV|MD|DDS|DVM|PhD|Ph\.D\.|Esq\.?)(?![\w])")


def resolve_spans(results) -> list[Span]:
    """Non-overlapping findings: longer first (removing more is the safe side: an address wins over a
    name inside it), then higher score, then earlier; returned in text order."""
    ranked = sorted(results, key=lambda r: (-(r.end - r.start), -r.score, r.start))
    taken: list[Span] = []
    for r in ranked:
        if all(r.end <= s.start or r.start >= s.end for s in taken):
            taken.append(Span(r.start, r.end, r.entity_type, r.score))
    return sorted(taken, key=lambda s: s.start)


def widen_person_spans(text: str, spans: list[Span]) -> list[Span]:
    """PERSON spans widened over a title just before ("Dr. ") or a suffix just after (", Jr.", " MD"),
    where that does not run into a neighbouring span."""
    out: list[Span] = []
    for k, s in enumerate(spans):
        if s.entity_type == "PERSON":
            lo = out[-1].end if out else 0
            hi = spans[k + 1].start if k + 1 < len(spans) else len(text)
            before = _TITLE_BEFORE.search(text, max(lo, s.start - 12), s.start)
            after = _SUFFIX_AFTER.match(text[s.end:min(hi, s.end + 12)])
            s = replace(s, start=before.start() if before else s.start, end=s.end + (after.end() if after else 0))
        out.append(s)
    return out
