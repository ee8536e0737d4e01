"""``dedup_exact`` and ``dedup_near``: remove repeated documents, keeping one per cluster of duplicates.

Repetition is what makes a language model memorise and regurgitate training text, so deduplication is a
privacy control as much as a quality one. Both stages are global stages (:mod:`fmaudit.stages.global_stage`):
the sign pass hashes every shard, the global step clusters the whole corpus (:mod:`fmaudit.dedup`), and
the apply pass drops every document that is not its cluster's keeper, with reason ``exact_duplicate`` or
``near_duplicate``. A dropped document records in ``meta.duplicate`` the id of the document it duplicates
(the one kept), the exact Jaccard similarity of their shingle sets and the MinHash estimate of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from fmaudit.corpus import Document, id_hash64
from fmaudit.dedup import MinHasher, Shingler, false_negative_probability, false_positive_probability
from fmaudit.dedup.global_step import DuplicateSet, find_duplicates
from fmaudit.dedup.signatures import exact_arrays, near_arrays
from fmaudit.dedup.store import SignatureStore
from fmaudit.stages import register
from fmaudit.stages.base import ReportContext, StageReport, StageResult
from fmaudit.stages.dedup.report import dedup_report
from fmaudit.stages.dedup.settings import DedupExactSettings, DedupNearSettings
from fmaudit.stages.global_stage import GlobalDecisions, GlobalStage
from fmaudit.stats import StageStats

SIGN_BATCH = 256  # documents hashed and permuted at once: bounds the sign pass's temporaries


class _Dedup(GlobalStage):
    reason: ClassVar[str]

    def decide(self, sig_root: Path, n_shards: int, workdir: Path,
               excluded: Optional[np.ndarray]) -> GlobalDecisions:
        store = SignatureStore(sig_root, n_shards)
        found = find_duplicates(store, workdir, keep=self.settings.keep, threshold=self._threshold(),
                                excluded=excluded, max_rows=self.settings.max_bucket_rows)
        decisions = GlobalDecisions(dropped_docs=np.array([d.doc for d in found.duplicates], dtype=np.int64))
        for d in found.duplicates:
            shard, _ = store.locate(d.doc)
            decisions.drops.setdefault(shard, {})[store.doc_id(d.doc)] = {
                "drop": True, "duplicate_of": store.doc_id(d.keeper), "similarity": d.similarity,
                "estimated_similarity": d.estimated_similarity}
        # sample pairs: the duplicates with the lowest id hashes (spread over the corpus, stable)
        ranked = sorted(found.duplicates, key=lambda d: (id_hash64(store.doc_id(d.doc)), d.doc))
        for k, d in enumerate(ranked[:self.settings.sample_pairs]):
            for doc, role in ((d.keeper, "kept"), (d.doc, "dropped")):
                shard, _ = store.locate(doc)
                facts = decisions.drops.setdefault(shard, {}).setdefault(store.doc_id(doc), {"drop": False})
                facts["sample"] = [k, role, d.similarity]
        decisions.summary = self._summary(store, found, excluded)
        return decisions

    def _threshold(self) -> Optional[float]:
        return None

    def _summary(self, store: SignatureStore, found: DuplicateSet, excluded) -> dict:
        return {"documents": store.n_docs, "excluded": int(excluded.sum()) if excluded is not None else 0,
                "duplicates": len(found.duplicates), "clusters": sum(found.cluster_sizes.values()),
                "cluster_sizes": {str(k): v for k, v in sorted(found.cluster_sizes.items())},
                "spill_bytes": found.spill_bytes, "partitions": found.partitions}

    def process(self, docs: list[Document], stats: StageStats) -> StageResult:
        result = StageResult(kept=[])
        for doc in docs:
            source = str(doc.meta.get("source", "(none)"))
            stats.add("source_in:" + source)
            facts = self._decisions.get(doc.id)
            if facts and "sample" in facts:
                k, role, sim = facts["sample"]
                stats.sample(f"pair{k}", role=role, id=doc.id, similarity=sim, text=doc.text[:300])
            if not facts or not facts["drop"]:
                result.kept.append(doc)
                continue
            stats.add("source_dup:" + source)
            stats.hist("similarity", facts["similarity"], 0.0, 1.0, 20)
            stats.hist("estimated_similarity", facts["estimated_similarity"], 0.0, 1.0, 20)
            stats.observe("similarity", facts["similarity"])
            meta = {**doc.meta, "duplicate": {"of": facts["duplicate_of"], "similarity": facts["similarity"],
                                              "estimated_similarity": facts["estimated_similarity"]}}
            result.dropped.append((Document(doc.id, doc.text, meta), self.reason))
        return result

    def report(self, stats: StageStats, ctx: ReportContext) -> StageReport:
        return dedup_report(self.name, self.settings, stats, ctx)


@register
class DedupExact(_Dedup):
    name = "dedup_exact"
    Settings = DedupExactSettings
    reason = "exact_duplicate"
    description = "Drops documents whose normalised text equals an earlier kept one (keep rule in the policy)."

    def sign(self, docs: list[Document]) -> dict[str, np.ndarray]:
        return exact_arrays([d.id for d in docs], [d.text for d in docs], self.settings.normalize.normalizer())


@register
class DedupNear(_Dedup):
    name = "dedup_near"
    Settings = DedupNearSettings
    reason = "near_duplicate"
    description = "Drops near duplicates: MinHash-LSH candidates verified by exact Jaccard, one kept per cluster."

    def setup(self) -> None:
        s = self.settings
        self._shingler, self._hasher = Shingler(s.shingle, s.shingle_size), MinHasher(s.num_perm, s.seed)
        self._bands, self._rows = s.lsh_params()

    def sign(self, docs: list[Document]) -> dict[str, np.ndarray]:
        normalizer = self.settings.normalize.normalizer()
        parts = [near_arrays([d.id for d in docs[i:i + SIGN_BATCH]], [d.text for d in docs[i:i + SIGN_BATCH]],
                             normalizer, self._shingler, self._hasher, self._bands, self._rows)
                 for i in range(0, len(docs), SIGN_BATCH)]
        if not parts:
            parts = [near_arrays([], [], normalizer, self._shingler, self._hasher, self._bands, self._rows)]
        out = {name: np.concatenate([p[name] for p in parts]) for name in parts[0] if name != "offsets"}
        sizes = [p["offsets"][1:] - p["offsets"][:-1] for p in parts]
        out["offsets"] = np.concatenate(([0], np.cumsum(np.concatenate(sizes)))).astype(np.int64)
        return out

    def _threshold(self) -> Optional[float]:
        return self.settings.threshold

    def _summary(self, store: SignatureStore, found: DuplicateSet, excluded) -> dict:
        s = self.settings
        bands, rows = s.lsh_params()
        return {**super()._summary(store, found, excluded), "lsh": {
            "num_perm": s.num_perm, "bands": bands, "rows": rows, "threshold": s.threshold,
            "fp_area": false_positive_probability(s.threshold, bands, rows),
            "fn_area": false_negative_probability(s.threshold, bands, rows)},
            "candidate_pairs": found.candidate_pairs, "false_positives": found.false_positives,
            "candidate_false_positive_rate": found.false_positives / found.candidate_pairs
            if found.candidate_pairs else 0.0,
            "skipped_pairs": found.skipped_pairs}
