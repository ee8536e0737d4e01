"""Spans of text a counterfactual swap must never touch: URLs, e-mail addresses, handles, code, and whatever the
pii stage wrote (every token form and the spans it recorded in the document's meta: :mod:`fmaudit.text.pii_marks`)."""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Optional

from fmaudit.text.pii_marks import merge, protected_spans

_TLDS = "com|org|net|edu|gov|io|co|uk|de|fr|info|biz|ai|dev|app|me|us|ca|au|ly"
PROTECTED = re.compile(
    r"```.*?(?:```|\Z)"                       # fenced code block (to the end if never closed)
    r"|~~~.*?(?:~~~|\Z)"
    r"|`[^`\n]+`"                              # inline code
    r"|<(code|pre|script|style)\b.*?(?:</\1>|\Z)"  # HTML code
    r"|\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"']+"  # URLs with a scheme or www.
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"           # e-mail addresses
    r"|(?<![\w@])@\w+"                         # @handles
    rf"|\b[\w-]+(?:\.[\w-]+)*\.(?:{_TLDS})\b(?:/[^\s<>\"']*)?",  # bare domains: his-site.com/page
    re.DOTALL | re.IGNORECASE,
)


class ProtectedSpans:
    """The protected character ranges of one text, for fast "is this offset protected?" questions."""

    def __init__(self, text: str, meta: Optional[dict] = None):
        spans = merge([m.span() for m in PROTECTED.finditer(text)] + protected_spans(text, meta))
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]

    def covers(self, start: int, end: int) -> bool:
        """True when [start, end) overlaps a protected span."""
        i = bisect_right(self.starts, end - 1) - 1
        return i >= 0 and self.ends[i] > start

    def __bool__(self) -> bool:
        return bool(self.starts)
