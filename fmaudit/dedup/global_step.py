"""The global step of deduplication: buckets -> candidate pairs -> verified clusters -> who is dropped.

Input: the :class:`~fmaudit.dedup.store.SignatureStore` the signature pass committed. The bucket keys
of every document are spilled to disk by band (:class:`~fmaudit.dedup.lsh.BucketSpill`), read back one
partition at a time, and each document that shares a bucket with a lower-numbered one becomes a
candidate pair with the bucket's first document. A pair whose documents are already in one cluster is
skipped; otherwise (near duplicates) its exact Jaccard similarity over the stored shingle sets is
computed, and the pair joins the clusters only at or above the threshold. Candidate pairs below the
threshold are the LSH false positives the report counts. Exact duplicates (one 64-bit digest as the
single "band") need no verification.

Everything is ordered (partitions by name, rows by key then document), so the result does not depend on
the number of workers that wrote the shards, or on a kill and restart in between. Memory: one spilled
partition (``max_rows`` rows of 16 bytes) plus a few 8-byte arrays over the documents (union-find parents,
lengths, id hashes); signatures and shingle sets are memory-mapped and read only for candidate pairs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from fmaudit.dedup.cluster import UnionFind, choose_keepers
from fmaudit.dedup.lsh import BucketSpill
from fmaudit.dedup.minhash import jaccard_estimate
from fmaudit.dedup.shingles import exact_jaccard
from fmaudit.dedup.store import SignatureStore


@dataclass
class Duplicate:
    """A document to drop: dense number, the document it duplicates (its cluster's keeper), similarities."""

    doc: int
    keeper: int
    similarity: float  # exact Jaccard with the keeper (1.0 for exact duplicates)
    estimated_similarity: float  # MinHash estimate with the keeper (1.0 for exact duplicates)


@dataclass
class DuplicateSet:
    duplicates: list[Duplicate]
    cluster_sizes: dict[int, int]  # cluster size -> number of clusters (sizes >= 2)
    candidate_pairs: int = 0  # candidate pairs verified by exact Jaccard
    false_positives: int = 0  # ... of which below the threshold
    skipped_pairs: int = 0  # candidate pairs already joined through other pairs (not verified)
    spill_bytes: int = 0
    partitions: int = 0
    extra: dict = field(default_factory=dict)


def find_duplicates(store: SignatureStore, workdir: str | os.PathLike, *, keep: str,
                    threshold: Optional[float] = None, excluded: Optional[np.ndarray] = None,
                    max_rows: int = 1 << 22) -> DuplicateSet:
    """Cluster the documents of ``store`` whose bucket keys collide; ``threshold`` (near duplicates)
    verifies each candidate pair by exact Jaccard, None (exact duplicates) trusts the key.
    ``excluded``: a boolean mask of documents an earlier stage already drops (left out of every cluster)."""
    n = store.n_docs
    bands = int(store.shards[0].array("keys").shape[1]) if store.shards else 1
    spill = BucketSpill(Path(workdir) / "buckets", bands, n, max_rows=max_rows)
    for index, shard in enumerate(store.shards):
        docs = np.arange(store.base[index], store.base[index + 1], dtype=np.uint64)
        keys = np.asarray(shard.array("keys"))
        if excluded is not None:
            alive = ~excluded[store.base[index]:store.base[index + 1]]
            docs, keys = docs[alive], keys[alive]
        if len(docs):
            spill.add(keys, docs)
    result = DuplicateSet([], {}, spill_bytes=spill.bytes_on_disk(),
                          partitions=len(list(spill.folder.glob("band*.bin"))))
    uf = UnionFind(n)
    for heads, members in spill.star_edges():
        for h, m in zip(heads.tolist(), members.tolist()):
            if uf.find(h) == uf.find(m):
                result.skipped_pairs += 1
                continue
            if threshold is not None:
                result.candidate_pairs += 1
                if exact_jaccard(store.shingle_set(h), store.shingle_set(m)) < threshold:
                    result.false_positives += 1
                    continue
            uf.union(h, m)
    spill.remove()
    labels = uf.labels()
    keepers = choose_keepers(labels, keep, store.gather("lengths"), store.gather("id_hash"))
    sizes = np.bincount(labels, minlength=n)
    hist = np.bincount(sizes[sizes >= 2])
    result.cluster_sizes = {int(s): int(c) for s, c in enumerate(hist) if c}
    for doc in np.flatnonzero(keepers != np.arange(n)).tolist():
        keeper = int(keepers[doc])
        if threshold is None:
            sim = est = 1.0
        else:
            sim = exact_jaccard(store.shingle_set(doc), store.shingle_set(keeper))
            est = float(jaccard_estimate(store.signature(doc), store.signature(keeper)))
        result.duplicates.append(Duplicate(doc, keeper, round(sim, 6), round(est, 6)))
    return result
