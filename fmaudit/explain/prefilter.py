"""Candidate pre-selection for influence scoring: the training documents most similar to a query by TF-IDF.

Scoring every training document against every query costs one training-gradient pass over the corpus per
query batch; Grosse et al. (2023) first kept the documents most similar to the query by TF-IDF. Documents
that share no vocabulary with the query can still be influential, so the report states how many candidates
were scored and what share of the corpus they are (coverage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class Candidates:
    """Per query, the indices of its candidate documents (most similar first) and their similarities."""

    per_query: list[np.ndarray]
    similarity: list[np.ndarray]
    corpus_size: int
    method: str

    @property
    def union(self) -> np.ndarray:
        """Every document some query needs, sorted: scored once for the whole query batch."""
        return np.unique(np.concatenate(self.per_query)) if self.per_query else np.array([], dtype=int)

    @property
    def coverage(self) -> float:
        """Share of the corpus scored."""
        return len(self.union) / self.corpus_size if self.corpus_size else 0.0


def tfidf_candidates(texts: Sequence[str], queries: Sequence[str], k: int) -> Candidates:
    """The ``k`` documents with the highest TF-IDF cosine similarity to each query (ties: corpus order).

    With ``k`` at least the corpus size every document is a candidate (exhaustive scoring).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    vectorizer = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    docs = vectorizer.fit_transform(texts)
    sims = (vectorizer.transform(queries) @ docs.T).toarray()  # rows are L2-normalised: cosine similarity
    per_query, similarity = [], []
    for row in sims:
        order = np.lexsort((np.arange(n), -row))[:min(k, n)]  # by similarity, then by index
        per_query.append(order)
        similarity.append(row[order])
    return Candidates(per_query, similarity, n, "tfidf" if k < n else "exhaustive")


def all_candidates(n: int, n_queries: int) -> Candidates:
    """Every document for every query (no pre-filter)."""
    idx = np.arange(n)
    return Candidates([idx] * n_queries, [np.full(n, np.nan)] * n_queries, n, "exhaustive")
