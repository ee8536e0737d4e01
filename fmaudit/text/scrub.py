"""Anonymization of text shown in reports and logs: every sample passes through :func:`scrub`.

It runs presidio (spaCy NER plus presidio's pattern recognizers) and replaces each finding with a
typed tag such as ``<EMAIL_ADDRESS>``. It is independent of the ``pii`` stage's settings on purpose:
a report must not show raw PII even for a run whose policy has no PII stage.
"""

from __future__ import annotations

import re
from functools import lru_cache

SCRUB_ENTITIES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IP_ADDRESS", "IBAN_CODE",
                  "LOCATION", "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE", "URL", "CRYPTO"]
SCRUB_THRESHOLD = 0.3
# Digit runs that look like account, card or phone numbers even where no recognizer validates them.
_LONG_DIGITS = re.compile(r"(?<![\w<])(?:\d[ \-.]?){7,}\d(?![\w>])")
_TAG = re.compile(r"<[A-Z_]+>")


@lru_cache(maxsize=1)
def _analyzer():
    from fmaudit.text.nlp import presidio_analyzer

    return presidio_analyzer("en_core_web_sm")


def scrub(text: str) -> str:
    """``text`` with anything that looks like PII replaced by ``<ENTITY_TYPE>`` tags."""
    if not text or not text.strip():
        return text
    results = _analyzer().analyze(text=text, language="en", entities=SCRUB_ENTITIES, score_threshold=SCRUB_THRESHOLD)
    spans = sorted(((r.start, r.end, r.entity_type) for r in results), key=lambda s: (s[0], -s[1]))
    out, pos = [], 0
    for start, end, kind in spans:
        if start < pos:
            continue
        out.append(text[pos:start])
        out.append(f"<{kind}>")
        pos = end
    out.append(text[pos:])
    return _LONG_DIGITS.sub("<NUMBER>", "".join(out))


SCRUB_PIECE = 50_000  # characters per presidio call in scrub_long (spaCy's limit is 1,000,000)


def scrub_long(text: str, piece: int = SCRUB_PIECE) -> str:
    """:func:`scrub` of a text of any length, cut at whitespace into pieces of at most about ``piece`` characters."""
    out, pos = [], 0
    while len(text) - pos > piece:
        cut = text.rfind(" ", pos + piece // 2, pos + piece)
        cut = cut + 1 if cut > 0 else pos + piece
        out.append(scrub(text[pos:cut]))
        pos = cut
    out.append(scrub(text[pos:]))
    return "".join(out)
