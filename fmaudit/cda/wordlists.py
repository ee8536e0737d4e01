"""Pair files: the word lists a counterfactual swap is built from.

A pair file is UTF-8 text, one pair per line, TAB-separated: ``side_a <TAB> side_b [<TAB> kind [<TAB> direction]]``.
``#`` starts a comment. ``direction`` is ``both`` (default), ``a>b`` / ``m>f`` (only side A -> side B) or
``b>a`` / ``f>m``. Where a term appears in several pairs, the first pair that maps it decides its target.
See ``fmaudit/data/gender_pairs.tsv`` for the shipped gender list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
GENDER_PAIRS = DATA_DIR / "gender_pairs.tsv"
GENDERED_NAMES = DATA_DIR / "gendered_names.tsv"

KINDS = ("word", "pronoun", "title", "royal", "noun")
DIRECTIONS = {"both": (True, True), "a>b": (True, False), "m>f": (True, False), "b>a": (False, True),
              "f>m": (False, True)}


class PairFileError(ValueError):
    """A pair file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Term:
    """What one term of a pair list becomes: its counterpart, its side (0 = A, 1 = B) and its kind."""

    target: str
    side: int
    kind: str


@dataclass
class PairList:
    """The terms of one axis, keyed by their lower-case form (``case_sensitive``: as written, for names)."""

    path: Path
    terms: dict[str, Term] = field(default_factory=dict)
    case_sensitive: bool = False

    def lookup(self, word: str) -> Term | None:
        return self.terms.get(word if self.case_sensitive else word.lower())


@lru_cache(maxsize=32)
def load_pairs(path: str | Path, case_sensitive: bool = False) -> PairList:
    """Read and validate a pair file (cached); :class:`PairFileError` names the file and line of a bad entry."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PairFileError(f"{path}: cannot read pair file: {e}") from None
    pairs = PairList(path, case_sensitive=case_sensitive)
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cols = [c.strip() for c in line.split("\t")]
        where = f"{path}:{lineno}"
        if len(cols) < 2 or len(cols) > 4 or not cols[0] or not cols[1]:
            raise PairFileError(f"{where}: expected 'side_a<TAB>side_b[<TAB>kind[<TAB>direction]]', got {raw!r}")
        a, b = cols[0], cols[1]
        kind = cols[2] if len(cols) > 2 and cols[2] else "word"
        direction = cols[3] if len(cols) > 3 else "both"
        if kind not in KINDS:
            raise PairFileError(f"{where}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        if direction not in DIRECTIONS:
            raise PairFileError(f"{where}: unknown direction {direction!r} (one of {', '.join(DIRECTIONS)})")
        if not case_sensitive:
            a, b = a.lower(), b.lower()
        if a == b:
            raise PairFileError(f"{where}: a term cannot be its own counterpart ({a!r})")
        a_to_b, b_to_a = DIRECTIONS[direction]
        if a_to_b:
            pairs.terms.setdefault(a, Term(b, 0, kind))
        if b_to_a:
            pairs.terms.setdefault(b, Term(a, 1, kind))
    if not pairs.terms:
        raise PairFileError(f"{path}: pair file holds no pairs")
    return pairs


def apply_case(source: str, target: str) -> str:
    """``target`` written in the case pattern of ``source`` (he->she, He->She, HE->SHE, McX stays as listed)."""
    if len(source) > 1 and source.isupper():
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    if source.islower():
        return target.lower()
    return target
