"""Word and character shingles of normalised texts, hashed to 32 bits for a whole batch at once.

A shingle's hash is a polynomial hash of its code points modulo 2^64, mixed with its length and
finalised with MurmurHash3's 64-bit ``fmix`` (low 32 bits kept)::

    h = sum(c_j * B^(n-1-j))  (mod 2^64),  hash = fmix64(h ^ n * L) & 0xFFFFFFFF

For a batch, the hashes of all windows come from one prefix sum: with ``B`` odd it has an inverse
modulo 2^64, ``Q[i] = sum_{j<i} c_j * B^-j`` and ``h(l, r) = B^(r-1) * (Q[r] - Q[l])``, so every
shingle of every document is two array lookups and a multiply (numpy's uint64 arithmetic wraps,
which is the modulo). :func:`shingle_hash` computes the same value for one shingle in plain Python:
it is the ``hashfunc`` to give ``datasketch.MinHash`` for signatures identical to
:class:`fmaudit.dedup.minhash.MinHasher`'s. A polynomial hash is not collision-resistant against an
adversary who crafts texts; deduplication only needs it to spread ordinary text.

Shingles: ``word`` shingles are runs of ``size`` consecutive whitespace-separated tokens (the text
between the first token's start and the last token's end); ``char`` shingles are windows of ``size``
code points. A document shorter than one shingle is one shingle (its whole text); an empty one has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import numpy as np

_MASK64 = (1 << 64) - 1
_B = 0x100000001B3  # odd (the 64-bit FNV prime), so invertible modulo 2^64
_B_INV = pow(_B, -1, 1 << 64)
_LEN_MIX = 0x9E3779B97F4A7C15
_WS_SET = frozenset(c for c in range(0x3001) if chr(c).isspace())  # no whitespace above U+3000
_WS_TABLE = np.zeros(max(_WS_SET) + 2, dtype=bool)  # code point -> is whitespace (last entry: "above all")
_WS_TABLE[list(_WS_SET)] = True


def _fmix64_scalar(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser on a uint64 array (a bijection that spreads every input bit)."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def shingle_hash(shingle: str) -> int:
    """The 32-bit hash of one shingle (reference implementation, same value as the batched one)."""
    h = 0
    for ch in shingle:
        h = (h * _B + ord(ch)) & _MASK64
    return _fmix64_scalar(h ^ ((len(shingle) * _LEN_MIX) & _MASK64)) & 0xFFFFFFFF


_POWERS: dict[int, np.ndarray] = {}


def _powers(base: int, n: int) -> np.ndarray:
    """base^0 .. base^(n-1) modulo 2^64 (cached, grown by doubling: documents reuse one table)."""
    table = _POWERS.get(base)
    if table is None or table.size < n:
        size = max(n, 2 * (table.size if table is not None else 1024))
        table = np.full(size, base, dtype=np.uint64)
        table[0] = 1
        table = _POWERS[base] = np.cumprod(table, dtype=np.uint64)
    return table[:n]


@dataclass(frozen=True)
class Shingler:
    """Hashed shingles of normalised texts."""

    kind: Literal["word", "char"] = "word"
    size: int = 5

    def iter_shingles(self, text: str) -> Iterator[str]:
        """The shingles of one text as strings (reference and baseline; the batched path never builds them)."""
        if not text:
            return
        if self.kind == "char":
            if len(text) <= self.size:
                yield text
                return
            for i in range(len(text) - self.size + 1):
                yield text[i:i + self.size]
            return
        spans, start = [], None
        for i, ch in enumerate(text):
            if ord(ch) in _WS_SET:
                if start is not None:
                    spans.append((start, i))
                    start = None
            elif start is None:
                start = i
        if start is not None:
            spans.append((start, len(text)))
        if not spans:
            return
        k = min(self.size, len(spans))
        for i in range(len(spans) - k + 1):
            yield text[spans[i][0]:spans[i + k - 1][1]]

    def hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of every shingle of every text: ``(hashes uint32, offsets int64)``, where text ``i``'s
        shingles are ``hashes[offsets[i]:offsets[i + 1]]`` (sorted, duplicates removed: a set)."""
        n = len(texts)
        joined = "".join(texts)
        cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
        starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        total, longest = int(starts[-1]), int(lengths.max(initial=0))
        # positions relative to each document's start: the power tables only need the longest document
        rel = np.arange(total, dtype=np.int64) - np.repeat(starts[:-1], lengths)
        q = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(cps * _powers(_B_INV, longest)[rel], out=q[1:], dtype=np.uint64)
        left, right, doc = (self._char_spans if self.kind == "char" else self._word_spans)(cps, starts, lengths)
        width = (right - left).astype(np.uint64)
        h = _powers(_B, longest + 1)[np.maximum(right - 1 - starts[doc], 0)] * (q[right] - q[left])
        h = fmix64(h ^ (width * np.uint64(_LEN_MIX))) & np.uint64(0xFFFFFFFF)
        keys = (doc.astype(np.uint64) << np.uint64(32)) | h
        keys.sort()  # by document, then hash; then drop repeats (a set per document)
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if keys.size else keys
        doc_sorted = (keys >> np.uint64(32)).astype(np.int64)
        offsets = np.searchsorted(doc_sorted, np.arange(n + 1), side="left").astype(np.int64)
        return (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), offsets

    def _char_spans(self, cps, starts, lengths):
        k = self.size
        counts = np.where(lengths >= k, lengths - k + 1, np.minimum(lengths, 1))
        doc = np.repeat(np.arange(len(lengths)), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        left = starts[:-1][doc] + (np.arange(doc.size) - first)
        right = left + np.minimum(lengths[doc], k)
        return left, right, doc

    def _word_spans(self, cps, starts, lengths):
        n, total = len(lengths), cps.size
        ws = _WS_TABLE[np.minimum(cps, _WS_TABLE.size - 1)]
        boundary_start = np.zeros(total, dtype=bool)
        boundary_start[starts[:-1][lengths > 0]] = True
        boundary_end = np.zeros(total, dtype=bool)
        boundary_end[starts[1:][lengths > 0] - 1] = True
        prev_ws = np.concatenate(([True], ws[:-1]))
        next_ws = np.concatenate((ws[1:], [True]))
        tok_start = np.flatnonzero(~ws & (prev_ws | boundary_start))
        tok_end = np.flatnonzero(~ws & (next_ws | boundary_end)) + 1
        tok_doc = np.searchsorted(starts, tok_start, side="right") - 1
        per_doc = np.bincount(tok_doc, minlength=n)
        k = self.size
        counts = np.where(per_doc >= k, per_doc - k + 1, np.minimum(per_doc, 1))
        doc = np.repeat(np.arange(n), counts)
        first_tok = np.repeat(np.cumsum(per_doc) - per_doc, counts)
        within = np.arange(doc.size) - np.repeat(np.cumsum(counts) - counts, counts)
        span = np.minimum(per_doc[doc], k)
        left = tok_start[first_tok + within]
        right = tok_end[first_tok + within + span - 1]
        return left, right, doc


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted sets of shingle hashes (1.0 for two empty sets)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)
