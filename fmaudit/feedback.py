"""Text-to-score functions ("scorers") shared by data stages and model audits, chosen by name.

A scorer turns a list of texts into a ``(n, labels)`` array of scores in [0, 1]:

- ``detoxify``: the Detoxify classifiers (``original``, ``unbiased``, ``multilingual``, ``original-small``,
  ``unbiased-small``, or a local detoxify-format checkpoint), see :mod:`fmaudit.detox`;
- ``profanity-check``: alt-profanity-check's linear model (ships its weights, offline, fast); one label,
  ``profanity``;
- ``cascade``: a fast scorer clears the texts it finds plainly clean; only the rest reach the full scorer.
  Rows it cleared are NaN, except a deterministic audit sample that the full scorer also scores, so the
  cascade's agreement with the full scorer can be measured.

Settings are pydantic models (part of a policy); :func:`make_scorer` builds the scorer, loading its model.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional, Sequence, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fmaudit.errors import InputError

DETOXIFY_MODEL_TYPES = ("original", "unbiased", "multilingual", "original-small", "unbiased-small")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetoxifySettings(_Strict):
    """The Detoxify scorer: a model type, or a local checkpoint plus the folder of its config and tokenizer."""

    name: Literal["detoxify"] = "detoxify"
    model_type: Literal[DETOXIFY_MODEL_TYPES] = Field(
        "original", description="Detoxify model; its weights are read from `checkpoint`, else from torch's hub "
                                "cache (never downloaded by fmaudit).")
    checkpoint: Optional[Path] = Field(None, description="Local detoxify-format checkpoint (.ckpt: a dict with "
                                                         "'config' and 'state_dict').")
    huggingface_config_path: Optional[Path] = Field(
        None, description="Folder with the transformers config and tokenizer files of the checkpoint's model, for "
                          "offline use. null: the transformers cache must hold them.")
    trusted: bool = Field(False, description="Allow a checkpoint that cannot be read with torch.load(weights_only="
                                             "True) (full unpickling runs code from the file: only for files you trust).")
    device: str = Field("cpu", description="torch device.")
    threads: Optional[int] = Field(None, ge=1, le=256, description="torch intra-op threads per worker; null: torch's "
                                                                     "default (all cores: oversubscribes with workers).")
    batch_tokens: int = Field(8192, ge=64, le=1_000_000, description="Padded tokens per forward pass (windows are "
                                                                     "sorted by length and batched up to this).")
    max_batch: int = Field(64, ge=1, le=4096, description="Windows per forward pass at most.")
    window_overlap: int = Field(64, ge=0, le=256, description="Tokens shared by consecutive windows of a long text "
                                                              "(a text's score is the maximum over its windows).")
    quantize: bool = Field(False, description="int8 dynamic quantization of the Linear layers (CPU only; faster, "
                                              "scores move slightly: measure agreement with the benchmark).")
    bf16: bool = Field(False, description="Run the forward passes under bfloat16 autocast (fast on CPUs with "
                                          "avx512_bf16/AMX; scores move slightly: measure agreement with the "
                                          "benchmark). Not with quantize.")
    recheck_margin: float = Field(0.0, ge=0, le=1, description="With quantize or bf16: windows whose fast score is "
                                                               "within this of a decision threshold are scored again "
                                                               "in full precision (for int8, by the unquantized "
                                                               "model, kept in memory too). 0: off.")

    @model_validator(mode="after")
    def _paths_exist(self) -> "DetoxifySettings":
        if self.bf16 and self.quantize:
            raise ValueError("bf16 and quantize exclude each other: choose one fast mode")
        if self.checkpoint is not None and not self.checkpoint.is_file():
            raise ValueError(f"checkpoint {self.checkpoint} is not a file")
        if self.huggingface_config_path is not None and not self.huggingface_config_path.is_dir():
            raise ValueError(f"huggingface_config_path {self.huggingface_config_path} is not a folder")
        return self


class ProfanitySettings(_Strict):
    """alt-profanity-check: a linear model on character/word n-grams, shipped with the package."""

    name: Literal["profanity-check"] = "profanity-check"


class CascadeSettings(_Strict):
    """A fast scorer clears plainly clean texts; the rest (and an audit sample) go to the full scorer."""

    name: Literal["cascade"] = "cascade"
    fast: Union[ProfanitySettings, DetoxifySettings] = Field(default_factory=ProfanitySettings,
                                                             discriminator="name", description="The fast scorer.")
    full: Union[DetoxifySettings, ProfanitySettings] = Field(default_factory=DetoxifySettings,
                                                             discriminator="name", description="The full scorer.")
    clear_below: float = Field(0.05, ge=0, le=1, description="Texts whose highest fast score is below this are "
                                                             "cleared without the full scorer.")
    audit_fraction: float = Field(0.05, ge=0, le=1, description="Share of cleared texts also sent to the full "
                                                                "scorer to measure the cascade's agreement.")


ScorerSettings = Annotated[Union[DetoxifySettings, ProfanitySettings, CascadeSettings], Field(discriminator="name")]


@dataclass
class ScoreBatch:
    """Scores of a list of texts: ``values[i, j]`` is text i's score for ``labels[j]`` (NaN: not scored);
    ``cleared[i]`` says a cascade's fast scorer cleared text i; ``audited[i]`` that it was scored anyway."""

    values: np.ndarray
    cleared: np.ndarray
    audited: np.ndarray


class Scorer(ABC):
    """Scores texts; ``labels`` names the columns of the scores."""

    name: str
    labels: tuple[str, ...]

    @abstractmethod
    def score(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), len(labels))`` float array of scores in [0, 1]."""

    def score_batch(self, texts: Sequence[str]) -> ScoreBatch:
        values = self.score(texts)
        none = np.zeros(len(texts), dtype=bool)
        return ScoreBatch(values, none, none.copy())

    def describe(self) -> dict:
        """What ran, for reports."""
        return {"name": self.name, "labels": list(self.labels)}

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        """The thresholds the caller decides with (a scorer may spend more care near them). Default: unused."""

    def pop_counts(self) -> dict[str, int]:
        """Work counters since the last call (e.g. ``windows`` scored), then reset."""
        counts, self.counts = getattr(self, "counts", {}), {}
        return counts


class ProfanityScorer(Scorer):
    name = "profanity-check"
    labels = ("profanity",)

    def __init__(self, settings: Optional[ProfanitySettings] = None):
        from profanity_check import predict_prob  # loads the shipped model (about a second)

        self._predict = predict_prob

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.asarray(self._predict(list(texts)), dtype=np.float32).reshape(-1, 1)


class CascadeScorer(Scorer):
    name = "cascade"

    def __init__(self, settings: CascadeSettings):
        self.settings = settings
        self.fast = make_scorer(settings.fast)
        self.full = make_scorer(settings.full)
        self.labels = self.full.labels

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return self.score_batch(texts).values

    def score_batch(self, texts: Sequence[str]) -> ScoreBatch:
        fast = self.fast.score(texts)
        cleared = fast.max(axis=1) < self.settings.clear_below if len(texts) else np.zeros(0, dtype=bool)
        audited = cleared & np.array([audit_pick(t, self.settings.audit_fraction) for t in texts], dtype=bool)
        values = np.full((len(texts), len(self.labels)), np.nan, dtype=np.float32)
        todo = np.flatnonzero(~cleared | audited)
        if len(todo):
            values[todo] = self.full.score([texts[i] for i in todo])
        return ScoreBatch(values, cleared, audited)

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        self.full.set_thresholds(thresholds)

    def pop_counts(self) -> dict[str, int]:
        counts = self.fast.pop_counts()
        for k, v in self.full.pop_counts().items():
            counts[k] = counts.get(k, 0) + v
        return counts

    def describe(self) -> dict:
        return {"name": self.name, "labels": list(self.labels), "fast": self.fast.describe(),
                "full": self.full.describe(), "clear_below": self.settings.clear_below,
                "audit_fraction": self.settings.audit_fraction}


def audit_pick(text: str, fraction: float) -> bool:
    """Deterministic choice of about ``fraction`` of texts (by content hash: the same on every worker)."""
    if fraction <= 0:
        return False
    from fmaudit.corpus import id_hash64

    return id_hash64(text) / 2**64 < fraction


def preflight_scorer(settings: BaseModel) -> tuple[str, ...]:
    """Check, without loading any model, that the scorer can be built offline; returns its labels."""
    if isinstance(settings, CascadeSettings):
        preflight_scorer(settings.fast)
        return preflight_scorer(settings.full)
    if isinstance(settings, DetoxifySettings):
        from fmaudit.detox import preflight

        return preflight(settings)
    return ProfanityScorer.labels


SCORERS = {
    "detoxify": "fmaudit.detox:DetoxifyScorer",
    "profanity-check": "fmaudit.feedback:ProfanityScorer",
    "cascade": "fmaudit.feedback:CascadeScorer",
}


def make_scorer(settings: BaseModel) -> Scorer:
    """Build (and load) the scorer named by ``settings.name``; InputError if its model cannot be had."""
    name = getattr(settings, "name", None)
    if name not in SCORERS:
        raise InputError(f"unknown scorer {name!r}; known: {', '.join(sorted(SCORERS))}")
    module, cls = SCORERS[name].split(":")
    return getattr(importlib.import_module(module), cls)(settings)
