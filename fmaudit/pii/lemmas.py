"""Exact lemmas for the few tokens presidio's context enhancer looks at, without tagging whole texts.

Presidio reads lemmas only around a pattern match of a recognizer with context words (the few
tokens before it). A token's lemma depends on its part-of-speech tag, which spaCy's tagger predicts
from a handful of tokens on each side (its tok2vec's receptive field), so a token's lemma is
computed by tagging a window of the text around it.
"""

from __future__ import annotations


PENDING = "\u2063pending"  # stands for a lemma not computed yet, while recording which are needed


class WindowLemmas:
    """``doc``'s lemmas as a lazy sequence: token i's lemma comes from tagging a window around it.

    The tagger's prediction for a token depends on ``context`` tokens either side, so tagging
    doc[i-window : i+context+8] gives exact lemmas for tokens at least ``context`` from a cut. While
    ``recording``, an unknown lemma is noted in ``wanted`` and reads as a keyword that matches no
    context word, so a first analysis pass shows which windows to tag, all in one batch
    (:func:`prefetch`); a lemma asked for later is computed on the spot.
    """

    def __init__(self, doc, pipes, window: int = 40, context: int = 8):
        self.doc, self.pipes, self.window, self.context = doc, pipes, window, context
        self.cache: dict[int, str] = {}
        self.recording = False
        self.wanted: list[int] = []

    def __len__(self) -> int:
        return len(self.doc)

    def __getitem__(self, i: int) -> str:
        if i < 0:
            i += len(self.doc)
        if i not in self.cache:
            if self.recording:
                self.wanted.append(i)
                return PENDING
            (lo, hi), = self.windows([i])
            self.fill(lo, hi, self._tag(self.doc[lo:hi].as_doc()))
        return self.cache[i]

    def __iter__(self):
        return (self[i] for i in range(len(self.doc)))

    def windows(self, indices) -> list[tuple[int, int]]:
        """Token ranges to tag so that every index gets an exact lemma (the enhancer walks backwards)."""
        n, out = len(self.doc), []
        for i in sorted(set(indices)):
            if out and out[-1][0] + (self.context if out[-1][0] else 0) <= i < out[-1][1] - (
                    self.context if out[-1][1] < n else 0):
                continue
            out.append((max(0, i - self.window), min(n, i + self.context + 8)))
        return out

    def _tag(self, part):
        for pipe in self.pipes:
            part = pipe(part)
        return part

    def fill(self, lo: int, hi: int, part) -> None:
        """Cache the exact lemmas of tagged window ``part`` = doc[lo:hi]."""
        n = len(self.doc)
        exact_lo = lo if lo == 0 else lo + self.context
        exact_hi = hi if hi == n else hi - self.context
        for j in range(exact_lo, exact_hi):
            self.cache.setdefault(j, part[j - lo].lemma_)


def prefetch(lemma_lists: list[WindowLemmas], pipes, batch_size: int) -> None:
    """Tag the windows every list recorded as wanted, batched through each component's ``pipe``."""
    jobs = [(lemmas, lo, hi) for lemmas in lemma_lists for lo, hi in lemmas.windows(lemmas.wanted)]
    parts = [lemmas.doc[lo:hi].as_doc() for lemmas, lo, hi in jobs]
    for pipe in pipes:
        parts = list(pipe.pipe(parts, batch_size=batch_size))
    for (lemmas, lo, hi), part in zip(jobs, parts):
        lemmas.fill(lo, hi, part)
        lemmas.wanted = []


class KeywordTest:
    """``lemma in keywords`` as presidio's context enhancer asks it, without lemmatizing every token:
    a lemma is a keyword when it is not a stop word, punctuation, "-PRON-" or "be"."""

    def __init__(self, nlp_engine, language: str):
        self.engine, self.language = nlp_engine, language

    def __contains__(self, lemma: str) -> bool:
        if lemma == PENDING:
            return True
        return (":" not in lemma and lemma not in ("-pron-", "be", "")
                and not self.engine.is_stopword(lemma, self.language)
                and not self.engine.is_punct(lemma, self.language))
