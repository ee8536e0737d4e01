"""Custom presidio recognizers declared in the policy: regex patterns with context words, deny-lists,
and optionally a checksum that a pattern match must pass."""

from __future__ import annotations

import re

from fmaudit.pii.specs import RecognizerSpec


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


DIGIT_RUN = re.compile(r"\d(?:[\s().\-/+]{0,3}\d)*")


def digit_windows(text: str, min_digits: int, margin: int) -> list[tuple[int, int]]:
    """Stretches of ``text`` around runs of at least ``min_digits`` digits (separated by at most three of
    " ().-/+"), widened by ``margin`` characters and merged where they touch."""
    out: list[tuple[int, int]] = []
    for m in DIGIT_RUN.finditer(text):
        if sum(map(str.isdigit, m.group())) < min_digits:
            continue
        lo, hi = max(0, m.start() - margin), min(len(text), m.end() + margin)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def focus_phone_recognizers(registry, min_digits: int = 4, margin: int = 40, regions=None) -> None:
    """Make presidio's PhoneRecognizer (libphonenumber, tried for eight regions over the whole text) look only
    at the stretches around digit runs long enough to be a phone number; its findings are the same, since a
    valid number in its regions has at least four digits (German ones), and the margin keeps its context
    checks intact. ``regions``: the regions tried instead of presidio's eight."""
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    def analyze(self, text, entities, nlp_artifacts=None):
        results = []
        for lo, hi in digit_windows(text, min_digits, margin):
            for r in PhoneRecognizer.analyze(self, text[lo:hi], entities, nlp_artifacts):
                r.start, r.end = r.start + lo, r.end + lo
                results.append(r)
        return EntityRecognizer.remove_duplicates(results)

    for recognizer in registry.recognizers:
        if isinstance(recognizer, PhoneRecognizer):
            recognizer.analyze = analyze.__get__(recognizer)
    set_phone_regions(registry, regions)


def set_phone_regions(registry, regions) -> None:
    """Make presidio's PhoneRecognizer try ``regions`` (ISO codes) instead of its default eight.

    Also turns on phonenumbers' own cache of compiled metadata patterns (for the whole process): with dozens
    of regions they outnumber the ``re`` module's cache of 512, and phonenumbers compiled them again on every
    use (a third of the recognizer's time)."""
    from phonenumbers import re_util
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    if hasattr(re_util, "enable_pattern_cache"):
        re_util.enable_pattern_cache()

    for recognizer in registry.recognizers:
        if regions and isinstance(recognizer, PhoneRecognizer):
            recognizer.supported_regions = list(regions)
