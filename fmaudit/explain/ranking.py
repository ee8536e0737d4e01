"""Which training documents most influenced a model's outputs: the API behind ``fmaudit influence``.

:func:`rank_training_documents` takes a checkpoint folder, a training-data folder and queries, and returns
per query the top-K proponents (highest influence) and opponents (lowest), identified by corpus id, with
their per-layer shares and the training tokens that carry most of the score. Shown text is anonymized
(:func:`fmaudit.text.scrub.scrub`); a token is shown only when it survives in the anonymized text.

    from fmaudit.explain.ranking import rank_training_documents
    result = rank_training_documents("run/model", "out/", ["The nurse said she"], top_k=5)
    for doc in result.queries[0].most:
        print(doc.doc_id, doc.score)
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, Optional, Sequence

import numpy as np

from fmaudit.errors import InputError, UsageError
from fmaudit.core.checkpoint import checkpoint_sha256
from fmaudit.explain.influence import InfluenceAnalysis, InfluenceSettings, Query, per_layer
from fmaudit.explain.prefilter import all_candidates, tfidf_candidates

SNIPPET_CHARS = 240
TOP_TOKENS = 8
PREFILTERS = ("tfidf", "none")


class RankedDocument(NamedTuple):
    """One training document's influence on one query (unpacks as ``doc_id, score, rank, ...``)."""

    doc_id: str
    score: float
    rank: int                       # 1 = most influential among the query's candidates
    similarity: Optional[float]     # TF-IDF cosine to the query (None without pre-filter)
    per_layer: dict[str, float]     # score shares by transformer layer ("layer 0", ...)
    top_tokens: list[dict]          # training tokens with the largest |share|: position, token, score
    text: str                       # anonymized start of the document


@dataclass
class QueryInfluence:
    query: str
    candidates: int
    most: list[RankedDocument]
    least: list[RankedDocument]
    scores: dict[str, float] = field(default_factory=dict)  # every candidate's score, by document id


@dataclass
class InfluenceResult:
    queries: list[QueryInfluence]
    corpus_size: int
    candidates_scored: int
    coverage: float
    prefilter: str
    modules: list[str]
    settings: dict
    factors_key: str
    factors_cached: bool
    fit_seconds: float
    score_seconds: float
    data_sha256: str = ""

    def to_json(self, with_scores: bool = False) -> dict:
        out = asdict(self)
        for q, raw in zip(out["queries"], self.queries):
            q["most"] = [d._asdict() for d in raw.most]
            q["least"] = [d._asdict() for d in raw.least]
            if not with_scores:
                q.pop("scores")
        return out


def load_training_documents(data_dir: str | os.PathLike) -> list:
    """The documents of a training-data folder (a filter job's ``data/``, or the job folder); InputError when
    it holds none."""
    from fmaudit.core.data import data_folder
    from fmaudit.corpus import read_documents

    folder = data_folder(data_dir)
    docs = list(read_documents([folder]))
    if not docs:
        raise InputError(f"{folder}: no documents (expected JSONL, Parquet or text files of documents)")
    return docs


def rank_training_documents(checkpoint: str | os.PathLike, data_dir: str | os.PathLike, queries: Sequence[Query],
                            top_k: int = 10, *, prefilter: str = "tfidf", candidates: int = 100,
                            settings: Optional[InfluenceSettings] = None, cache_dir: Optional[str | os.PathLike] = None,
                            anonymize: bool = True) -> InfluenceResult:
    """Rank the training documents of ``data_dir`` by their influence on each query under ``checkpoint``.

    ``prefilter="tfidf"`` scores only the ``candidates`` documents most similar to each query (all queries'
    candidates in one batch); ``"none"`` scores every document. EK-FAC factors are fitted once and cached
    (see :class:`~fmaudit.explain.influence.InfluenceAnalysis`).
    """
    from fmaudit.core.checkpoint import load_checkpoint

    _check_queries(queries, top_k, prefilter, candidates)
    docs = load_training_documents(data_dir)
    model, tokenizer = load_checkpoint(checkpoint)
    analysis = InfluenceAnalysis(model, tokenizer, docs, settings=settings, cache_dir=cache_dir,
                                 model_hash=checkpoint_sha256(checkpoint), in_place=True)
    return rank_documents(analysis, queries, top_k, prefilter=prefilter, candidates=candidates, anonymize=anonymize)


def _check_queries(queries, top_k: int, prefilter: str, candidates: int) -> None:
    if not queries:
        raise UsageError("no query: give at least one text to explain")
    for q in queries:
        text = " ".join(q) if isinstance(q, tuple) else q
        if not text or not text.strip():
            raise InputError("a query is empty: give the text whose influences are wanted")
    if top_k < 1 or candidates < 1:
        raise UsageError("top_k and candidates must be at least 1")
    if prefilter not in PREFILTERS:
        raise UsageError(f"unknown pre-filter {prefilter!r}; available: {', '.join(PREFILTERS)}")


def rank_documents(analysis: InfluenceAnalysis, queries: Sequence[Query], top_k: int = 10, *,
                   prefilter: str = "tfidf", candidates: int = 100, anonymize: bool = True) -> InfluenceResult:
    """:func:`rank_training_documents` for an analysis already built (fitted here if it is not)."""
    _check_queries(queries, top_k, prefilter, candidates)
    if not hasattr(analysis, "key_"):
        analysis.fit()
    texts = [d.text for d in analysis.documents]
    flat = [" ".join(q) if isinstance(q, tuple) else q for q in queries]
    cands = tfidf_candidates(texts, flat, candidates) if prefilter == "tfidf" else \
        all_candidates(len(texts), len(queries))
    union = cands.union
    t0 = time.perf_counter()
    scores = analysis.score(queries, union)
    layers = per_layer(scores)
    col = {int(d): j for j, d in enumerate(union)}
    picked = []
    for qi in range(len(queries)):
        own = cands.per_query[qi]
        values = scores["all"][qi, [col[int(d)] for d in own]]
        order = np.lexsort((own, -values))  # by score, ties by corpus order
        most = [(int(own[i]), r + 1) for r, i in enumerate(order[:top_k])]
        least = [(int(own[i]), len(own) - r) for r, i in enumerate(order[::-1][:top_k])]
        picked.append((own, values, most, least))
    shown = sorted({d for _, _, most, least in picked for d, _ in most + least})
    tokens = analysis.score(queries, shown, per_token=True)["tokens"]
    score_seconds = time.perf_counter() - t0
    scrub = _scrubber(anonymize)
    out = []
    for qi, (own, values, most, least) in enumerate(picked):
        sim = {int(d): float(s) for d, s in zip(cands.per_query[qi], cands.similarity[qi])}

        def ranked(doc: int, rank: int) -> RankedDocument:
            return _ranked(analysis, doc, rank, float(scores["all"][qi, col[doc]]),
                           None if np.isnan(sim[doc]) else sim[doc],
                           {f"layer {k}": float(v[qi, col[doc]]) for k, v in layers.items()},
                           tokens[qi, shown.index(doc)], scrub)

        out.append(QueryInfluence(
            query=scrub(flat[qi]), candidates=len(own), most=[ranked(d, r) for d, r in most],
            least=[ranked(d, r) for d, r in least],
            scores={analysis.documents[int(d)].id: float(v) for d, v in zip(own, values)}))
    return InfluenceResult(
        queries=out, corpus_size=len(texts), candidates_scored=len(union), coverage=cands.coverage,
        prefilter=cands.method, modules=analysis.modules, settings=analysis.settings.model_dump(),
        factors_key=analysis.key_, factors_cached=analysis.cache_hit_, fit_seconds=analysis.fit_seconds_,
        score_seconds=score_seconds, data_sha256=analysis.data_hash)


def _ranked(analysis: InfluenceAnalysis, doc: int, rank: int, score: float, similarity, layers: dict,
            token_scores: np.ndarray, scrub) -> RankedDocument:
    document, tokenizer = analysis.documents[doc], analysis.tokenizer
    ids = analysis.train_data.input_ids[doc]
    n = int(analysis.train_data.attention_mask[doc].sum())
    seen = tokenizer.decode(ids[:n].tolist(), skip_special_tokens=True)  # the part of the document scored
    seen_scrubbed = scrub(seen)
    order = sorted(range(n), key=lambda i: (-abs(float(token_scores[i])), i))[:TOP_TOKENS]
    special = set(tokenizer.all_special_ids)
    top = [{"position": i, "token": tokenizer.decode([int(ids[i])]) if int(ids[i]) in special else
            visible_token(tokenizer.decode([int(ids[i])]), seen, seen_scrubbed),
            "score": float(token_scores[i])} for i in sorted(order)]
    return RankedDocument(document.id, score, rank, similarity, layers, top, scrub(document.text[:SNIPPET_CHARS]))


def visible_token(token: str, original: str, scrubbed: str) -> str:
    """The token if it survives anonymization (it occurs in the scrubbed text and in no word that scrubbing
    removed), else a placeholder: a piece of a name must not leak through the token breakdown."""
    piece = token.strip()
    if not piece:
        return token
    removed = set(re.findall(r"\w+", original)) - set(re.findall(r"\w+", scrubbed))
    if piece in scrubbed and not any(piece in w for w in removed):
        return token
    return "<SCRUBBED>"


def _scrubber(anonymize: bool):
    if not anonymize:
        return lambda text: text
    from fmaudit.text.scrub import scrub

    return scrub
