"""Custom presidio recognizers declared in the policy: regex patterns with context words, deny-lists."""

from __future__ import annotations

import re

from fmaudit.pii.settings import RecognizerSpec


def build_recognizers(specs: list[RecognizerSpec], language: str) -> list:
    """One presidio ``PatternRecognizer`` per spec."""
    from presidio_analyzer import Pattern, PatternRecognizer

    out = []
    for spec in specs:
        flags = re.DOTALL | re.MULTILINE | (0 if spec.case_sensitive else re.IGNORECASE)
        recognizer = PatternRecognizer(
            supported_entity=spec.entity_type,
            name=spec.name,
            supported_language=language,
            patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns] or None,
            deny_list=spec.deny_list or None,
            deny_list_score=spec.deny_list_score,
            context=spec.context or None,
            global_regex_flags=flags,
        )
        out.append(recognizer)
    return out
