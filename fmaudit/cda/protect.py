"""Spans of text a counterfactual swap must never touch: URLs, e-mail addresses, handles, code and PII tags."""

from __future__ import annotations

import re
from bisect import bisect_right

_TLDS = "com|org|net|edu|gov|io|co|uk|de|fr|info|biz|ai|dev|app|me|us|ca|au|ly"
PROTECTED = re.compile(
    r"```.*?(?:```|\Z)"                       # fenced code block (to the end if never closed)
    r"|~~~.*?(?:~~~|\Z)"
    r"|`[^`\n]+`"                              # inline code
    r"|<(code|pre|script|style)\b.*?(?:</\1>|\Z)"  # HTML code
    r"|<[A-Z][A-Z0-9_]*>"                      # typed tags the PII stage writes: <PERSON>, <EMAIL_ADDRESS>
    r"|\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"']+"  # URLs with a scheme or www.
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"           # e-mail addresses
    r"|(?<![\w@])@\w+"                         # @handles
    rf"|\b[\w-]+(?:\.[\w-]+)*\.(?:{_TLDS})\b(?:/[^\s<>\"']*)?",  # bare domains: his-site.com/page
    re.DOTALL | re.IGNORECASE,
)
# The PII tags are upper case; IGNORECASE above must not widen them to every <tag>, so check case on the match.
_TAG = re.compile(r"<[A-Z][A-Z0-9_]*>")


class ProtectedSpans:
    """The protected character ranges of one text, for fast "is this offset protected?" questions."""

    def __init__(self, text: str):
        spans: list[tuple[int, int]] = []
        for m in PROTECTED.finditer(text):
            s = m.group()
            if s.startswith("<") and not s.lower().startswith(("<code", "<pre", "<script", "<style")) \
                    and not _TAG.fullmatch(s):
                continue
            spans.append(m.span())
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]

    def covers(self, start: int, end: int) -> bool:
        """True when [start, end) overlaps a protected span."""
        i = bisect_right(self.starts, end - 1) - 1
        return i >= 0 and self.ends[i] > start

    def __bool__(self) -> bool:
        return bool(self.starts)
