"""Identity terms by group (gender, religion, race, sexuality, disability, nationality), and a matcher.

The shipped list is ``fmaudit/data/identity_terms.yaml`` (documented there); policies extend it or
replace it. Matching is whole-word and case-insensitive.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import yaml

from fmaudit.errors import InputError

DEFAULT_TERMS_FILE = Path(__file__).resolve().parents[1] / "data" / "identity_terms.yaml"


def load_terms(path: Optional[Path] = None, extra: Optional[dict[str, list[str]]] = None) -> dict[str, list[str]]:
    """Terms by group from ``path`` (default: the shipped list), with ``extra`` terms added."""
    path = Path(path) if path else DEFAULT_TERMS_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"{path}: cannot read identity terms: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(t, str) for t in v)
                                             for v in data.values()):
        raise InputError(f"{path}: identity terms must be a mapping of group name to a list of terms")
    terms = {str(g): list(v) for g, v in data.items()}
    for group, more in (extra or {}).items():
        terms[group] = terms.get(group, []) + [t for t in more if t not in terms.get(group, [])]
    return terms


class IdentityMatcher:
    """Finds which groups a text mentions."""

    def __init__(self, terms: dict[str, list[str]]):
        self.groups = sorted(terms)
        self._patterns = {g: _pattern(terms[g]) for g in self.groups if terms[g]}

    def groups_in(self, text: str) -> list[str]:
        return [g for g, p in self._patterns.items() if p.search(text)]


def _pattern(terms: list[str]) -> re.Pattern:
    alternatives = sorted({r"\s+".join(map(re.escape, t.lower().split())) for t in terms if t.strip()},
                          key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])", re.IGNORECASE)
