"""Custom presidio recognizers declared in the policy: regex patterns with context words, deny-lists,
and optionally a checksum that a pattern match must pass."""

from __future__ import annotations

import re

from fmaudit.pii.settings import RecognizerSpec


def luhn_valid(text: str) -> bool:
    """True when the digits of ``text`` pass the Luhn checksum (payment card numbers)."""
    digits = [int(c) for c in text if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def build_recognizers(specs: list[RecognizerSpec], language: str) -> list:
    """One presidio ``PatternRecognizer`` per spec."""
    from presidio_analyzer import Pattern, PatternRecognizer

    class LuhnPatternRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return luhn_valid(pattern_text)

    out = []
    for spec in specs:
        cls = LuhnPatternRecognizer if spec.checksum == "luhn" else PatternRecognizer
        out.append(cls(
            supported_entity=spec.entity_type,
            name=spec.name,
            supported_language=language,
            patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns] or None,
            deny_list=spec.deny_list or None,
            deny_list_score=spec.deny_list_score,
            context=spec.context or None,
            global_regex_flags=re.DOTALL | re.MULTILINE | (0 if spec.case_sensitive else re.IGNORECASE),
        ))
    return out
