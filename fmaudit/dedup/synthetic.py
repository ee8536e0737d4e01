"""Seeded synthetic texts with planted near duplicates, for tests, benchmarks and the demo.

:func:`planted_corpus` writes ``n_base`` random documents and, for a share of them, copies edited by
replacing a fraction of their words. The similarity of each planted pair is not assumed from the edit
rate: it is the exact Jaccard similarity of the two documents' shingle sets, measured here, so tests
grade the deduplicator against the truth of the shingling the policy uses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class PlantedPair:
    original: int  # index of the original document
    copy: int  # index of the edited copy
    edit_rate: float  # share of the copy's words replaced


def random_text(rng: random.Random, vocab: list[str], words: tuple[int, int] = (80, 240)) -> str:
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(*words)))


def make_vocab(rng: random.Random, size: int = 4000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return sorted({"".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(size)})


def edit_words(text: str, rate: float, rng: random.Random, vocab: list[str]) -> str:
    """Replace ``round(rate * words)`` words (at least one when ``rate > 0``), evenly spaced from a random
    start, by random vocabulary words. Edits at least ``k`` words apart change ``k`` word k-shingles each,
    so a copy of a text with ``S`` shingles and ``e`` edits has Jaccard similarity about
    ``(S - k e) / (S + k e)`` with its original: the planted similarity is known."""
    words = text.split()
    edits = max(1, round(rate * len(words))) if rate > 0 else 0
    if edits:
        step = len(words) / edits
        first = rng.random() * step
        for j in range(edits):
            words[int(first + j * step)] = rng.choice(vocab)
    return " ".join(words)


def planted_corpus(n_base: int, share: float = 0.2, edit_rates=(0.0, 0.01, 0.02, 0.1, 0.2), seed: int = 0,
                   words: tuple[int, int] = (80, 240)) -> tuple[list[str], list[PlantedPair]]:
    """``n_base`` random documents plus edited copies of ``share`` of them (edit rates cycled), the copies
    placed at random positions; returns the texts and the planted pairs (by index into the texts)."""
    rng = random.Random(seed)
    vocab = make_vocab(rng)
    texts = [random_text(rng, vocab, words) for _ in range(n_base)]
    sources = rng.sample(range(n_base), int(n_base * share))
    pending = [(src, edit_rates[k % len(edit_rates)]) for k, src in enumerate(sources)]
    order: list[tuple[int, float] | int] = list(range(n_base)) + pending
    rng.shuffle(order)
    final, position, pairs = [], {}, []
    for item in order:
        if isinstance(item, int):
            position[item] = len(final)
            final.append(texts[item])
        else:
            src, rate = item
            final.append(edit_words(texts[src], rate, rng, vocab))
            pairs.append((src, len(final) - 1, rate))
    return final, [PlantedPair(position[src], copy, rate) for src, copy, rate in pairs]
