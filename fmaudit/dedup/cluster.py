"""Clusters of duplicates (union-find over verified pairs) and the rule that keeps one per cluster.

Keep rules (``keep``), all deterministic and independent of the number of workers:

- ``first``: the document that comes first in input order (files in sorted order, then line order);
- ``longest``: the longest normalised text (most characters), ties broken by input order;
- ``id_hash``: the lowest 64-bit hash of the document id (independent of input order, so adding or
  re-ordering files does not change which copy survives), ties broken by input order.
"""

from __future__ import annotations

import numpy as np

KEEP_RULES = ("first", "longest", "id_hash")


class UnionFind:
    """Disjoint sets over ``0 .. n-1`` (path halving, union by lower root index)."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return int(x)

    def union(self, x: int, y: int) -> bool:
        """Join the sets of ``x`` and ``y``; False if they were already one."""
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return False
        if ry < rx:
            rx, ry = ry, rx
        self.parent[ry] = rx
        return True

    def labels(self) -> np.ndarray:
        """The root of every element (its cluster label), by pointer jumping over the whole array."""
        roots = self.parent.copy()
        while True:
            up = roots[roots]
            if np.array_equal(up, roots):
                return roots
            roots = up


def choose_keepers(labels: np.ndarray, rule: str, lengths: np.ndarray, id_hashes: np.ndarray) -> np.ndarray:
    """For every document, the index of the document its cluster keeps (itself when it is kept)."""
    order_index = np.arange(len(labels))
    if rule == "first":
        order = order_index
    elif rule == "longest":
        order = np.lexsort((order_index, -np.asarray(lengths, dtype=np.int64)))
    elif rule == "id_hash":
        order = np.lexsort((order_index, np.asarray(id_hashes, dtype=np.uint64)))
    else:
        raise ValueError(f"unknown keep rule {rule!r}; known: {', '.join(KEEP_RULES)}")
    # walking the preferred order, the first document met in each cluster is its keeper
    clusters, first = np.unique(labels[order], return_index=True)
    return order[first][np.searchsorted(clusters, labels)].astype(np.int64)
