"""Cutting long texts into overlapping chunks below spaCy's length limit, without losing entities.

Each chunk *owns* a region; the owned regions partition the text. A finding is kept from the one
chunk whose owned region holds its start, and every owned region lies at least ``overlap / 2``
characters inside its chunk (except at the text's ends), so each finding is seen with the same
surrounding context as in the whole text, and none is cut in two or counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    start: int  # where the chunk's text begins in the whole text
    end: int
    own_start: int  # findings starting in [own_start, own_end) belong to this chunk
    own_end: int

    def owns(self, start_in_chunk: int) -> bool:
        return self.own_start <= self.start + start_in_chunk < self.own_end

    def shift(self, result):
        """A presidio result of this chunk, in the whole text's coordinates."""
        if self.start == 0:
            return result
        from presidio_analyzer import RecognizerResult

        return RecognizerResult(result.entity_type, result.start + self.start, result.end + self.start, result.score,
                                result.analysis_explanation, result.recognition_metadata)


def _cut_at_space(text: str, pos: int, lo: int) -> int:
    """The last whitespace position in (lo, pos], or ``pos`` if there is none."""
    for i in range(pos, lo, -1):
        if text[i - 1].isspace():
            return i
    return pos


def plan_chunks(text: str, size: int, overlap: int) -> list[Chunk]:
    """Chunks of at most ``size`` characters sharing ``overlap`` characters with their neighbours."""
    n = len(text)
    if n <= size:
        return [Chunk(0, n, 0, n)]
    half = overlap // 2
    chunks: list[Chunk] = []
    start, own_start = 0, 0
    while True:
        end = min(start + size, n)
        if end == n:
            chunks.append(Chunk(start, n, own_start, n))
            return chunks
        own_end = _cut_at_space(text, end - half, end - half - half // 2)
        chunks.append(Chunk(start, end, own_start, own_end))
        next_start = _cut_at_space(text, own_end - half, own_end - overlap)
        start, own_start = max(next_start, start + 1), own_end
