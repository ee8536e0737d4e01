"""Helpers of the dedup stage tests: a corpus with planted duplicates, its policy, and a slowed-down near
dedup stage (same outputs, sleeps in each pass) that a kill -9 can catch mid-pass."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import Field

from fmaudit.dedup import Normalizer, Shingler, exact_jaccard
from fmaudit.dedup.synthetic import planted_corpus
from fmaudit.stages import register
from fmaudit.stages.dedup.settings import DedupNearSettings
from fmaudit.stages.dedup.stage import DedupNear

THRESHOLD = 0.7


def planted_jsonl(path: Path, n_base: int = 300, seed: int = 3) -> dict:
    """Write the corpus; return the planted pairs by id with their exact Jaccard similarity."""
    texts, planted = planted_corpus(n_base, share=0.3, edit_rates=(0.0, 0.005, 0.01, 0.1, 0.2), seed=seed)
    ids = [f"doc-{i:04d}" for i in range(len(texts))]
    rows = [{"id": ids[i], "text": t, "meta": {"source": "web" if i % 3 else "books"}} for i, t in enumerate(texts)]
    rows += [{"id": "shout-0", "text": texts[0].upper() + " !!!"},  # an exact duplicate after normalisation
             {"id": "tiny", "text": "too short"}]  # dropped by the stage before the global ones
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    norm, shingler = Normalizer(), Shingler("word", 5)
    hashes, offsets = shingler.hashes([norm(t) for t in texts])
    sets = [hashes[offsets[i]:offsets[i + 1]] for i in range(len(texts))]
    return {(ids[p.original], ids[p.copy]): exact_jaccard(sets[p.original], sets[p.copy]) for p in planted}


def dedup_stages(near: str = "dedup_near", **near_settings) -> list[dict]:
    """A per-document stage before the global ones (run once, in the sign pass) and one after."""
    return [{"stage": "min_length", "min_chars": 20, "min_words": 5},
            {"stage": "dedup_exact"},
            {"stage": near, "threshold": THRESHOLD, "false_negative_weight": 0.8, "max_bucket_rows": 1024,
             **near_settings},
            {"stage": "noop"}]


class SlowNearSettings(DedupNearSettings):
    sleep_s: float = Field(0.0, ge=0, description="Seconds to sleep per shard signed, in decide, per batch.")


@register
class SlowDedupNear(DedupNear):
    """dedup_near, slowed down in each pass; its decide step leaves a flag file while it sleeps."""

    name = "test_dedup_slow"
    Settings = SlowNearSettings
    reason = "near_duplicate"

    def sign(self, docs):
        time.sleep(self.settings.sleep_s)
        return super().sign(docs)

    def decide(self, sig_root, n_shards, workdir, excluded):
        decisions = super().decide(sig_root, n_shards, workdir, excluded)
        (Path(workdir) / "deciding").parent.mkdir(parents=True, exist_ok=True)
        (Path(workdir) / "deciding").write_text("")
        time.sleep(self.settings.sleep_s * 20)
        return decisions

    def process(self, docs, stats):
        time.sleep(self.settings.sleep_s)
        return super().process(docs, stats)
