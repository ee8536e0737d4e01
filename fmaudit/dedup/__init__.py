"""Deduplication library: text normalisation, shingles, MinHash signatures, LSH banding with buckets
spilled to disk by band, exact Jaccard verification and clustering with a documented keep rule.

Everything here is plain numpy over batches of documents; the data stages ``dedup_exact`` and
``dedup_near`` (``fmaudit/stages/``) and the runner's global step use it. The MinHash scheme is
datasketch's ``affine32`` (see :mod:`fmaudit.dedup.minhash`), so signatures agree bit for bit with
``datasketch.MinHash`` given the same shingle hash function.
"""

from fmaudit.dedup.cluster import KEEP_RULES, UnionFind, choose_keepers
from fmaudit.dedup.lsh import (BucketSpill, band_keys, collision_probability, false_negative_probability,
                              false_positive_probability, optimal_params)
from fmaudit.dedup.minhash import MinHasher, jaccard_estimate
from fmaudit.dedup.normalize import Normalizer, text_digest
from fmaudit.dedup.shingles import Shingler, exact_jaccard, shingle_hash

__all__ = ["KEEP_RULES", "UnionFind", "choose_keepers", "BucketSpill", "band_keys", "collision_probability",
           "false_negative_probability", "false_positive_probability", "optimal_params", "MinHasher", "jaccard_estimate", "Normalizer",
           "text_digest", "Shingler", "exact_jaccard", "shingle_hash"]
