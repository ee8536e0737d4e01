"""The counterfactual swapper: finds gendered (and other axes') terms in texts and writes their counterfactuals.

A text is first scanned with a regular expression for candidate terms outside protected spans (URLs, e-mail
addresses, code, PII tags). Only candidates whose swap depends on grammar need spaCy: ``her``/``his`` unless the
next word settles it, capitalised nouns that may be names, first names, nouns that may be verbs. A window of a few
words around each of those (inside its sentence), and nothing else, is tagged and parsed, batched over all texts
with ``nlp.pipe``. Texts without any candidate cost one regex scan. Further axes (religion, nationality, ...)
come from pair files and are swapped as plain terms.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Callable, Optional

from fmaudit.cda import grammar
from fmaudit.cda.protect import ProtectedSpans
from fmaudit.cda.wordlists import PairList, Term, apply_case

GENDER = "gender"
GENDER_SIDES = ("male", "female")
WORD = re.compile(r"[^\W\d_]+")
# Sentence ends (not after common abbreviations) and paragraph breaks; a single line break may be a hard wrap.
SENTENCE_END = re.compile(
    r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<!\bJr)(?<!\bSr)(?<!\bvs)(?<!\bProf)"
    r"[.!?]+[\"'\u201d\u2019)\]]*\s+|\n[ \t]*\n\s*")
MAX_SEGMENT = 800  # characters parsed around a candidate at most
WINDOW_WORDS = 6  # words of context parsed on each side of a candidate (within its sentence)
NEEDS_GRAMMAR = frozenset({"her", "his"})


@dataclass(frozen=True)
class Axis:
    """One swap axis from a pair file: its name, the names of its two sides, and its terms."""

    name: str
    sides: tuple[str, str]
    pairs: PairList

    def pattern(self) -> re.Pattern:
        """Matches any term of the axis (longest first; spaces in phrases match any whitespace)."""
        terms = sorted(self.pairs.terms, key=len, reverse=True)
        alts = "|".join(r"\s+".join(map(re.escape, t.split())) for t in terms)
        return re.compile(rf"(?<![^\W_])(?:{alts})(?![^\W_])", re.IGNORECASE)


@dataclass
class Swap:
    """One replaced term: character span in the original, its text, replacement, axis and source side."""

    start: int
    end: int
    source: str
    target: str
    axis: str
    side: int
    name: bool = False

    @property
    def pair(self) -> str:
        """Counter key: ``axis:source>target`` (lower case); first names are counted by direction only."""
        if self.name:
            return f"{self.axis}:first_name:{GENDER_SIDES[self.side]}>{GENDER_SIDES[1 - self.side]}"
        return f"{self.axis}:{self.source.lower()}>{self.target.lower()}"


@dataclass
class Counterfactual:
    """A text's counterfactual and what it took: swaps and each axis's side counts before the swap."""

    original: str
    text: str
    swaps: list[Swap]
    before: dict[str, list[int]] = field(default_factory=dict)
    candidates: int = 0

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def edits(self) -> list[tuple[int, int, int]]:
        """Each swap as ``(start, end, new length)`` in the original (for :func:`fmaudit.text.pii_marks.shift_spans`)."""
        return [(s.start, s.end, len(s.target)) for s in self.swaps]

    def after(self) -> dict[str, list[int]]:
        """Side counts of the counterfactual: every swapped term moves to the other side."""
        out = {axis: list(counts) for axis, counts in self.before.items()}
        for s in self.swaps:
            out[s.axis][s.side] -= 1
            out[s.axis][1 - s.side] += 1
        return out


@dataclass
class _Candidate:
    start: int
    end: int
    axis: str
    term: Term
    name: bool = False
    grammar: bool = False
    preset: Optional[str] = None  # target already decided from the words around it


class Swapper:
    """Writes counterfactuals of texts over the gender axis (words and first names) and further pair-file axes.

    ``nlp`` is a callable returning a spaCy pipeline with a tagger (and, for dependency rules, a parser); it is
    called only when a text holds a candidate that needs grammar.
    """

    def __init__(self, gender: Optional[PairList], names: Optional[PairList], axes: list[Axis],
                 nlp: Callable[[], object], batch_size: int = 64):
        self.gender = gender
        self.names = names
        self.axes = list(axes)
        self._patterns = [(a, a.pattern()) for a in self.axes]
        self._nlp_factory = nlp
        self._nlp = None
        self.batch_size = batch_size
        self.sides = ({GENDER: GENDER_SIDES} if gender or names else {}) | {a.name: a.sides for a in self.axes}

    @property
    def nlp(self):
        if self._nlp is None:
            self._nlp = self._nlp_factory()
        return self._nlp

    def counterfactual(self, text: str, meta: Optional[dict] = None) -> Counterfactual:
        return self.counterfactuals([text], [meta])[0]

    def counterfactuals(self, texts: list[str], metas: Optional[list[Optional[dict]]] = None) -> list[Counterfactual]:
        """The counterfactual of each text (same order); texts are parsed together in batches. ``metas``: each
        text's document meta, whose recorded PII spans are left alone (:mod:`fmaudit.text.pii_marks`)."""
        found = [self._candidates(t, m) for t, m in zip(texts, metas or [None] * len(texts))]
        tokens = self._parse(texts, found)
        return [self._apply(t, c, tok) for t, c, tok in zip(texts, found, tokens)]

    # -- finding candidates -------------------------------------------------------------------------------
    def _candidates(self, text: str, meta: Optional[dict] = None) -> list[_Candidate]:
        protected = ProtectedSpans(text, meta)
        out: list[_Candidate] = []
        if self.gender or self.names:
            for m in WORD.finditer(text):
                cand = self._gender_candidate(text, m.group(), m.start(), m.end())
                if cand is not None and not (protected and protected.covers(cand.start, cand.end)):
                    out.append(cand)
        for axis, pattern in self._patterns:
            for m in pattern.finditer(text):
                term = axis.pairs.lookup(" ".join(m.group().split()))
                if term is not None and not (protected and protected.covers(*m.span())):
                    out.append(_Candidate(m.start(), m.end(), axis.name, term))
        if self.axes:
            out = _without_overlaps(out)
        return out

    def _gender_candidate(self, text: str, word: str, start: int, end: int) -> Optional[_Candidate]:
        if self.gender is not None:
            term = self.gender.lookup(word)
            if term is not None:
                lower = word.lower()
                if lower in NEEDS_GRAMMAR:
                    nxt = _next_word(text, end)
                    last = bool(nxt) and _next_word(text, text.index(nxt, end) + len(nxt)) == ""
                    preset = grammar.lexical_pronoun_target(lower, nxt, last)
                    return _Candidate(start, end, GENDER, term, grammar=preset is None, preset=preset)
                needs = term.kind in ("noun", "royal") and (word[0].isupper() or lower in grammar.VERB_LIKE)
                return _Candidate(start, end, GENDER, term, grammar=needs)
        if self.names is not None and word[0].isupper():
            term = self.names.lookup(word.title() if word.isupper() else word)
            if term is not None:
                return _Candidate(start, end, GENDER, term, name=True, grammar=True)
        return None

    # -- parsing only what needs grammar ------------------------------------------------------------------
    def _parse(self, texts: list[str], found: list[list[_Candidate]]) -> list[dict[int, object]]:
        """For each text, the spaCy token at the start offset of each candidate that needs grammar."""
        windows: list[tuple[int, int, list[int]]] = []  # (text index, start, candidate starts)
        pieces: list[str] = []
        for i, (text, cands) in enumerate(zip(texts, found)):
            starts = [c.start for c in cands if c.grammar]
            for s, e, inside in (_windows(text, starts) if starts else ()):
                windows.append((i, s, inside))
                pieces.append(text[s:e])
        tokens: list[dict[int, object]] = [{} for _ in texts]
        for (i, s, inside), doc in zip(windows, self.nlp.pipe(pieces, batch_size=self.batch_size)):
            offsets = doc.to_array("IDX").tolist()
            for pos in inside:
                k = bisect_left(offsets, pos - s)
                if k < len(offsets) and offsets[k] == pos - s:
                    tokens[i][pos] = doc[k]
        return tokens

    # -- deciding and writing -----------------------------------------------------------------------------
    def _apply(self, text: str, cands: list[_Candidate], tokens: dict[int, object]) -> Counterfactual:
        before = {axis: [0, 0] for axis in self.sides}
        swaps: list[Swap] = []
        for c in cands:
            source = text[c.start:c.end]
            target = self._decide(source, c, tokens.get(c.start) if c.grammar else None)
            if target is None:
                continue
            before[c.axis][c.term.side] += 1
            swaps.append(Swap(c.start, c.end, source, apply_case(source, target), c.axis, c.term.side, c.name))
        parts, pos = [], 0
        for s in swaps:
            parts.append(text[pos:s.start])
            parts.append(s.target)
            pos = s.end
        parts.append(text[pos:])
        return Counterfactual(text, "".join(parts), swaps, before, len(cands))

    @staticmethod
    def _decide(source: str, c: _Candidate, token) -> Optional[str]:
        """The counterpart of a candidate (lower case, or as listed for names), or None to leave it alone."""
        if c.grammar and token is not None and token.text.rstrip(".").lower() != source.lower():
            token = None  # spaCy split the word differently; fall back to the word-list rule
        if c.preset is not None:
            return c.preset
        if c.name:
            return c.term.target if grammar.first_name_swappable(token) else None
        if c.term.kind == "pronoun":
            return grammar.pronoun_target(source.lower(), token, c.term.target)
        if c.term.kind in ("noun", "royal") and not grammar.noun_swappable(c.term.kind, token):
            return None
        return c.term.target


def _without_overlaps(cands: list[_Candidate]) -> list[_Candidate]:
    """Candidates sorted by position; of overlapping ones the first found (gender before other axes) wins."""
    taken: list[_Candidate] = []
    for c in sorted(enumerate(cands), key=lambda ic: (ic[1].start, ic[0])):
        if taken and c[1].start < taken[-1].end:
            continue
        taken.append(c[1])
    return taken


def _next_word(text: str, end: int) -> Optional[str]:
    """The word after ``end`` (skipping spaces); "" at punctuation or the end; None before a digit or symbol."""
    i, newlines = end, 0
    while i < len(text) and text[i].isspace():
        newlines += text[i] == "\n"
        i += 1
    if i == len(text) or newlines > 1:  # the end, or a blank line (paragraph break)
        return ""
    m = WORD.match(text, i)
    if m:
        return m.group()
    return "" if text[i] in ".,;:!?)]}\"\u201d" else None


def _windows(text: str, starts: list[int]) -> list[tuple[int, int, list[int]]]:
    """Spans to parse: WINDOW_WORDS words on each side of each offset, inside its sentence, overlapping ones
    merged; each with the offsets it serves. The tagger looks a few tokens around a word, and the rules only
    ask for a token's tag, dependency label and neighbours, so a window decides as well as the whole text."""
    bounds = [0] + [m.end() for m in SENTENCE_END.finditer(text)] + [len(text)]
    out: list[tuple[int, int, list[int]]] = []
    for pos in starts:
        i = bisect_right(bounds, pos) - 1
        lo, hi = bounds[i], bounds[min(i + 1, len(bounds) - 1)]
        s, e = _words_back(text, pos, lo), _words_forward(text, pos, hi)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]), out[-1][2] + [pos])
        else:
            out.append((s, e, [pos]))
    return out


def _words_back(text: str, pos: int, lo: int) -> int:
    """Start of the WINDOW_WORDS-th word before ``pos`` (not before ``lo``, nor more than MAX_SEGMENT/2 back)."""
    if pos - lo > MAX_SEGMENT // 2:  # a very long sentence: start at a word boundary inside the limit
        k = text.find(" ", pos - MAX_SEGMENT // 2, pos)
        lo = k + 1 if k >= 0 else pos
    j = pos
    for _ in range(WINDOW_WORDS):
        k = text.rfind(" ", lo, j - 1) if j - 1 > lo else -1
        if k < 0:
            return lo
        j = k + 1
    return j


def _words_forward(text: str, pos: int, hi: int) -> int:
    """End of the WINDOW_WORDS-th word after the one at ``pos`` (not after ``hi``, nor MAX_SEGMENT/2 ahead)."""
    hi = min(hi, pos + MAX_SEGMENT // 2)
    j = pos
    for _ in range(WINDOW_WORDS + 1):
        k = text.find(" ", j + 1, hi)
        if k < 0:
            return hi
        j = k
    return j
