"""Policy settings of the ``dedup_exact`` and ``dedup_near`` stages."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from fmaudit.dedup import Normalizer, optimal_params
from fmaudit.settings import StageSettings, Strict


class NormalizeSettings(Strict):
    """Which differences between two texts do not count (applied before hashing)."""

    unicode: bool = Field(True, description="NFKC-fold compatibility characters (full-width letters, ligatures).")
    lowercase: bool = Field(True, description="Fold case.")
    punctuation: bool = Field(True, description="Replace punctuation and symbols with spaces.")
    digits: bool = Field(False, description="Map every digit to 0 (pages that differ only in dates or counters).")
    whitespace: bool = Field(True, description="Collapse runs of whitespace into one space.")

    def normalizer(self) -> Normalizer:
        return Normalizer(**self.model_dump())


class DedupSettings(StageSettings):
    normalize: NormalizeSettings = Field(default_factory=NormalizeSettings,
                                         description="Normalisation applied before hashing.")
    keep: Literal["first", "longest", "id_hash"] = Field(
        "first", description="Which document of a cluster of duplicates survives: 'first' in input order, the "
                             "'longest' text (ties: first), or the lowest 'id_hash' of the document id (stable "
                             "when files are added or re-ordered; ties: first).")
    sample_pairs: int = Field(3, ge=0, le=20, description="Pairs (kept, dropped) shown in the report, anonymized.")
    min_truth_recall: Optional[float] = Field(
        None, ge=0, le=1, description="Check, with --truth: at least this share of the planted duplicate pairs "
                                      "(truth rows of kind 'duplicate') removed by the run's dedup stages.")
    max_bucket_rows: int = Field(1 << 22, ge=1024, le=1 << 30,
                                 description="Rows (16 bytes each) of one spilled bucket partition the global "
                                             "step reads at once: bounds its memory.")


class DedupExactSettings(DedupSettings):
    """Exact duplicates: documents whose normalised texts are equal (64-bit blake2b digest)."""


class DedupNearSettings(DedupSettings):
    """Near duplicates: MinHash over shingles, LSH banding, exact Jaccard verification of candidates."""

    shingle: Literal["word", "char"] = Field("word", description="Shingles of words or of characters.")
    shingle_size: int = Field(5, ge=1, le=64, description="Words (or characters) per shingle.")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations (signature length).")
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity at or above which two documents "
                                                          "are duplicates (verified exactly on candidates).")
    bands: Optional[int] = Field(None, ge=1, le=1024, description="LSH bands; null: chosen for the threshold.")
    rows: Optional[int] = Field(None, ge=1, le=1024, description="Signature rows per band; set with bands.")
    false_negative_weight: float = Field(
        0.5, ge=0, le=1, description="When bands and rows are chosen for the threshold: weight of missed "
                                     "duplicates against candidate false positives (as datasketch's weights).")
    seed: int = Field(1, ge=0, le=2 ** 31 - 1, description="Seed of the MinHash permutations.")

    @model_validator(mode="after")
    def _bands_rows(self) -> "DedupNearSettings":
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (then they are chosen for the threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def lsh_params(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.rows
        return optimal_params(self.threshold, self.num_perm, 1 - self.false_negative_weight, self.false_negative_weight)
