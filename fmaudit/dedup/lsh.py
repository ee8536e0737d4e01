"""LSH banding of MinHash signatures, its parameters, and buckets spilled to disk by band.

A signature of ``bands * rows`` values is cut into ``bands`` bands of ``rows`` values; two documents
are candidates when all rows of at least one band agree, which for Jaccard similarity ``s`` happens
with probability ``1 - (1 - s^rows)^bands`` (the S-curve). :func:`optimal_params` picks bands and rows
for a target threshold the way ``datasketch.MinHashLSH`` does (minimising the weighted areas of false
positives below the threshold and false negatives above it).

:class:`BucketSpill` keeps memory bounded in the global step: rows ``(band key, document)`` go to one
file per band and key range, and candidate pairs are read back one file at a time, so memory holds one
partition (at most ``max_rows`` rows), never the whole index.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from fmaudit.dedup.shingles import fmix64

ROW = np.dtype([("key", "<u8"), ("doc", "<u8")])


def collision_probability(s, bands: int, rows: int):
    """Probability that two documents of Jaccard similarity ``s`` share at least one band."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


def false_positive_probability(threshold: float, bands: int, rows: int) -> float:
    """Area under the S-curve below ``threshold`` (datasketch's false-positive measure)."""
    from scipy.integrate import quad

    return quad(lambda s: 1 - (1 - s ** float(rows)) ** float(bands), 0.0, threshold)[0]


def false_negative_probability(threshold: float, bands: int, rows: int) -> float:
    """Area above the S-curve from ``threshold`` to 1 (datasketch's false-negative measure)."""
    from scipy.integrate import quad

    return quad(lambda s: 1 - (1 - (1 - s ** float(rows)) ** float(bands)), threshold, 1.0)[0]


@lru_cache(maxsize=64)
def optimal_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """``(bands, rows)`` with ``bands * rows <= num_perm`` minimising the weighted error areas (as datasketch)."""
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            err = (false_positive_probability(threshold, b, r) * fp_weight
                   + false_negative_probability(threshold, b, r) * fn_weight)
            if err < best:
                best, opt = err, (b, r)
    return opt


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(n, bands)`` uint64 keys: a hash of each band's ``rows`` signature values."""
    n = signatures.shape[0]
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} permutations, "
                         f"signatures have {signatures.shape[1]}")
    cut = signatures[:, :bands * rows].reshape(n, bands, rows).astype(np.uint64)
    h = np.zeros((n, bands), dtype=np.uint64)
    for r in range(rows):
        h = fmix64(h * np.uint64(0x100000001B3) + cut[:, :, r] + np.uint64(r + 1))
    return h


class BucketSpill:
    """Rows ``(key, doc)`` spilled to ``folder`` in one file per band and key range."""

    def __init__(self, folder: str | os.PathLike, bands: int, n_docs: int, max_rows: int = 1 << 22):
        self.folder = Path(folder)
        self.bands = bands
        self.part_bits = max(0, int(np.ceil(np.log2(max(1, n_docs) / max_rows)))) if n_docs > max_rows else 0
        shutil.rmtree(self.folder, ignore_errors=True)  # leftovers of a killed global step
        self.folder.mkdir(parents=True)

    def _path(self, band: int, part: int) -> Path:
        return self.folder / f"band{band:04d}.{part:05d}.bin"

    def add(self, keys: np.ndarray, docs: np.ndarray) -> None:
        """Append ``keys`` (``(n, bands)``) of documents ``docs`` (``(n,)`` dense indices)."""
        for band in range(keys.shape[1]):
            rows = np.empty(len(docs), dtype=ROW)
            rows["key"], rows["doc"] = keys[:, band], docs
            parts = (rows["key"] >> np.uint64(64 - self.part_bits)) if self.part_bits else np.zeros(len(docs), np.uint64)
            for part in np.unique(parts):
                with open(self._path(band, int(part)), "ab") as f:
                    f.write(rows[parts == part].tobytes())

    def star_edges(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per partition, in a fixed order: ``(head, member)`` arrays, one pair for each document that
        shares a bucket with a lower-numbered one, paired with the bucket's lowest document (a star, so a
        bucket of m documents gives m - 1 pairs, not m(m-1)/2)."""
        for path in sorted(self.folder.glob("band*.bin")):
            rows = np.fromfile(path, dtype=ROW)
            rows = rows[np.lexsort((rows["doc"], rows["key"]))]
            new = np.ones(len(rows), dtype=bool)
            new[1:] = rows["key"][1:] != rows["key"][:-1]
            run_start = np.flatnonzero(new)
            head = rows["doc"][run_start[np.cumsum(new) - 1]]
            member = rows["doc"]
            keep = head != member
            if keep.any():
                yield head[keep].astype(np.int64), member[keep].astype(np.int64)

    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("band*.bin"))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
