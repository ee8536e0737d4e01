"""The per-shard arrays the signature pass commits (see :mod:`fmaudit.dedup.store`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fmaudit.corpus import id_hash64
from fmaudit.dedup.lsh import band_keys
from fmaudit.dedup.minhash import MinHasher
from fmaudit.dedup.normalize import Normalizer, text_digest
from fmaudit.dedup.shingles import Shingler


def _common(ids: Sequence[str], normalized: Sequence[str]) -> dict[str, np.ndarray]:
    return {"lengths": np.fromiter((len(t) for t in normalized), dtype=np.int64, count=len(normalized)),
            "id_hash": np.fromiter((id_hash64(i) for i in ids), dtype=np.uint64, count=len(ids))}


def exact_arrays(ids: Sequence[str], texts: Sequence[str], normalizer: Normalizer) -> dict[str, np.ndarray]:
    """Exact deduplication: one key per document, the digest of its normalised text."""
    normalized = [normalizer(t) for t in texts]
    keys = np.fromiter((text_digest(t) for t in normalized), dtype=np.uint64, count=len(normalized))
    return {"keys": keys.reshape(-1, 1), **_common(ids, normalized)}


def near_arrays(ids: Sequence[str], texts: Sequence[str], normalizer: Normalizer, shingler: Shingler,
                hasher: MinHasher, bands: int, rows: int) -> dict[str, np.ndarray]:
    """Near deduplication: MinHash signature, its band keys, and the shingle set (for exact verification).
    A document with no shingle (nothing left after normalisation) gets keys of its own: never a candidate."""
    normalized = [normalizer(t) for t in texts]
    shingles, offsets = shingler.hashes(normalized)
    sig = hasher.signatures(shingles, offsets)
    keys = band_keys(sig, bands, rows)
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if empty.size:  # unique per document (its id hash in every band): empty texts are exact-dedup's job
        keys[empty] = _common([ids[i] for i in empty], [""] * empty.size)["id_hash"][:, None]
    return {"keys": keys, "sig": sig, "shingles": shingles, "offsets": offsets, **_common(ids, normalized)}
