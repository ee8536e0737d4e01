"""Deduplication stages ``dedup_exact`` and ``dedup_near`` (registered when imported)."""

from fmaudit.stages.dedup.stage import DedupExact, DedupNear

__all__ = ["DedupExact", "DedupNear"]
