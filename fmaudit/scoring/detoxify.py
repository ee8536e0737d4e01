"""The Detoxify scorer: safe checkpoint loading, and fast scoring of texts of any length.

A detoxify checkpoint is a ``torch.save``-d dict ``{"config": {"arch": {"args": {"model_type",
"model_name", "tokenizer_name", "num_classes"}}, "dataset": {"args": {"classes": [...]}}}, "state_dict"}``
(read from detoxify's ``load_checkpoint``). It is read with ``torch.load(weights_only=True)``; one that
needs full unpickling is refused unless the policy says ``trusted: true``. Weights are never downloaded:
without a local checkpoint, torch's hub cache must already hold the release file.

Scoring is Detoxify's (sigmoid of the classifier's logits) made fast without changing the model: texts
are tokenized once, cut into windows of the model's maximum length (a long text's score is the maximum
over its windows: nothing is truncated), windows are sorted by length and batched up to a token budget,
and the forward passes run under ``torch.inference_mode`` with the configured threads (and, when asked,
int8 dynamic quantization or bfloat16 autocast, with windows scoring near a threshold re-scored in full
precision). A text of at most one window gets exactly Detoxify's input.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np
from pydantic import Field, model_validator

from fmaudit.errors import InputError
from fmaudit.scoring import register_scorer
from fmaudit.scoring.base import Scorer, ScorerSettings

DETOXIFY_MODEL_TYPES = ("original", "unbiased", "multilingual", "original-small", "unbiased-small")

# detoxify's standard names for the Jigsaw labels (its load_checkpoint renames them the same way)
class DetoxifySettings(ScorerSettings):
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


LABEL_NAMES = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}
RELEASE_URLS = {
    "original": "v0.1-alpha/toxic_original-c1212f89.ckpt",
    "unbiased": "v0.3-alpha/toxic_debiased-c7548aa0.ckpt",
    "multilingual": "v0.4-alpha/multilingual_debiased-0b549669.ckpt",
    "original-small": "v0.1.2/original-albert-0e1d6498.ckpt",
    "unbiased-small": "v0.1.2/unbiased-albert-c8519128.ckpt",
}
DOWNLOAD_URL = "https://github.com/unitaryai/detoxify/releases/download/"


def hub_cache_path(model_type: str) -> Path:
    """Where ``torch.hub`` keeps the release checkpoint of ``model_type`` once downloaded."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(RELEASE_URLS[model_type]).name


def resolve_checkpoint(settings: DetoxifySettings) -> Path:
    """The checkpoint file to read, or InputError naming the ways out (nothing is ever downloaded)."""
    if settings.checkpoint is not None:
        return settings.checkpoint
    cached = hub_cache_path(settings.model_type)
    if cached.is_file():
        return cached
    raise InputError(
        f"detoxify model {settings.model_type!r}: its weights are not available offline (no `checkpoint` in the "
        f"policy, and torch's hub cache has no {cached}). fmaudit never downloads them. Ways out: (1) download "
        f"{DOWNLOAD_URL}{RELEASE_URLS[settings.model_type]} on a connected machine and set the toxicity stage's "
        f"`scorer.checkpoint: FILE` and `scorer.huggingface_config_path: DIR` (the config and tokenizer files of its "
        f"transformers model); (2) copy that file to {cached}; (3) use the offline scorer: `scorer: {{name: "
        f"profanity-check}}`.")


def preflight(settings: DetoxifySettings) -> tuple[str, ...]:
    """Cheap checks before any work: the checkpoint exists and reads safely (memory-mapped, no tensor data
    read), and its config and tokenizer are at hand offline; returns the labels it gives."""
    loaded = load_checkpoint(resolve_checkpoint(settings), settings.trusted, mmap=True)
    model_type = str(loaded["config"]["arch"]["args"]["model_type"])
    if settings.huggingface_config_path is None and not Path(model_type).is_dir():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model_type, "config.json"), str):
            raise InputError(
                f"detoxify checkpoint {resolve_checkpoint(settings)}: the config and tokenizer of {model_type!r} are "
                f"not in the transformers cache, and fmaudit never downloads them. Set `scorer.huggingface_config_path"
                f": DIR` to a folder holding them (config.json and tokenizer files).")
    return tuple(LABEL_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"])


def load_checkpoint(path: Path, trusted: bool = False, mmap: bool = False) -> dict:
    """Read a detoxify-format checkpoint without running code from it (unless ``trusted``); ``mmap`` maps
    the tensors instead of reading them (zip-format checkpoints)."""
    import torch

    try:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as e:
            if not mmap or "mmap" not in str(e):
                raise
            loaded = torch.load(path, map_location="cpu", weights_only=True)  # legacy format: no mmap
    except pickle.UnpicklingError as e:
        if not trusted:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(
                f"{path}: refused: this checkpoint cannot be read as plain weights (torch.load weights_only=True "
                f"failed: {first[:300]}). Loading it would unpickle arbitrary objects, which can run code. Re-save it "
                f"as a dict of config and tensors, or set `trusted: true` in the scorer settings if you trust its "
                f"origin.") from None
        loaded = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as e:
        raise InputError(f"{path}: cannot read checkpoint: {e}") from None
    if not isinstance(loaded, dict) or "config" not in loaded or "state_dict" not in loaded:
        raise InputError(f"{path}: not a detoxify checkpoint (expected a dict with 'config' and 'state_dict')")
    try:
        args = loaded["config"]["arch"]["args"]
        _ = args["model_name"], args["tokenizer_name"], args["model_type"], loaded["config"]["dataset"]["args"]["classes"]
    except (KeyError, TypeError) as e:
        raise InputError(f"{path}: detoxify checkpoint config lacks {e} (config.arch.args.model_name/"
                         f"tokenizer_name/model_type and config.dataset.args.classes are needed)") from None
    return loaded


def build_model(loaded: dict, settings: DetoxifySettings, source: Path):
    """The classifier and tokenizer of a checkpoint, from local files only; returns (model, tokenizer, labels)."""
    import transformers

    args = loaded["config"]["arch"]["args"]
    classes = [LABEL_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
    model_class = getattr(transformers, str(args["model_name"]), None)
    tok_class = getattr(transformers, str(args["tokenizer_name"]), None)
    if model_class is None or not str(args["model_name"]).endswith("ForSequenceClassification"):
        raise InputError(f"{source}: model_name {args['model_name']!r} is not a transformers sequence classifier")
    if tok_class is None or "Tokenizer" not in str(args["tokenizer_name"]):
        raise InputError(f"{source}: tokenizer_name {args['tokenizer_name']!r} is not a transformers tokenizer")
    where = str(settings.huggingface_config_path or args["model_type"])
    try:
        config = model_class.config_class.from_pretrained(where, num_labels=len(classes), local_files_only=True)
        tokenizer = tok_class.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError) as e:
        raise InputError(
            f"{source}: the config and tokenizer of {args['model_type']!r} are not available offline ({e}). Set "
            f"`scorer.huggingface_config_path: DIR` to a folder holding them (config.json and tokenizer files)."
        ) from None
    transformers.utils.logging.disable_progress_bar()
    model = model_class.from_pretrained(None, config=config, state_dict=loaded["state_dict"])
    return model.eval(), tokenizer, tuple(classes)


@register_scorer
class DetoxifyScorer(Scorer):
    name = "detoxify"
    Settings = DetoxifySettings
    version = "detoxify-format-1"

    @classmethod
    def preflight(cls, settings: DetoxifySettings) -> tuple[str, ...]:
        return preflight(settings)

    def __init__(self, settings: DetoxifySettings):
        import torch

        self.settings = settings
        self.checkpoint = resolve_checkpoint(settings)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        model, self.tokenizer, self.labels = build_model(load_checkpoint(self.checkpoint, settings.trusted),
                                                         settings, self.checkpoint)
        self.full_model = None  # the full-precision model, for re-checks near thresholds
        if (settings.quantize or settings.bf16) and settings.recheck_margin > 0:
            self.full_model = model.to(settings.device)
        if settings.quantize:
            model = quantize_int8(model)
        self.model = model.to(settings.device)
        self.max_len = model_max_length(self.tokenizer, model.config)
        self.prefix, self.suffix = special_tokens(self.tokenizer)
        self.counts: dict[str, int] = {}
        self._focus: Optional[tuple[np.ndarray, np.ndarray]] = None

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        """Thresholds the caller decides with; with ``recheck_margin``, fast (int8/bf16) scores near them are
        re-checked in full precision."""
        cols = [j for j, label in enumerate(self.labels) if label in thresholds]
        self._focus = (np.array(cols), np.array([thresholds[self.labels[j]] for j in cols], dtype=np.float32))

    def describe(self) -> dict:
        return {**super().describe(), "model_type": self.settings.model_type,
                "checkpoint": str(self.checkpoint), "quantize": self.settings.quantize, "bf16": self.settings.bf16,
                "recheck_margin": self.settings.recheck_margin,
                "max_length": self.max_len, "window_overlap": self.settings.window_overlap}

    def windows(self, texts: Sequence[str]) -> list[tuple[int, list[int]]]:
        """``(text index, input ids with special tokens)`` for every window of every text."""
        body = self.max_len - len(self.prefix) - len(self.suffix)
        step = max(1, body - self.settings.window_overlap)
        ids = self.tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        out = []
        for i, toks in enumerate(ids):
            starts = range(0, max(1, len(toks) - self.settings.window_overlap), step) if len(toks) > body else [0]
            for s in starts:
                out.append((i, self.prefix + toks[s:s + body] + self.suffix))
        return out

    def score(self, texts: Sequence[str], prompts: Optional[Sequence[str]] = None) -> np.ndarray:
        scores = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return scores
        wins = self.windows(texts)
        owner = np.array([w[0] for w in wins])
        per_text = np.bincount(owner, minlength=len(texts))
        self._count("windows", len(wins))
        self._count("multi_window_texts", int((per_text > 1).sum()))
        probs = self._forward(self.model, [w[1] for w in wins], self.settings.bf16)
        if self.full_model is not None and self._focus is not None and len(self._focus[0]):
            cols, thresholds = self._focus
            near = np.flatnonzero((np.abs(probs[:, cols] - thresholds) < self.settings.recheck_margin).any(axis=1))
            if len(near):
                probs[near] = self._forward(self.full_model, [wins[k][1] for k in near], bf16=False)
            self._count("rechecked_windows", len(near))
        np.maximum.at(scores, owner, probs)
        return scores

    def _count(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def _forward(self, model, windows: list[list[int]], bf16: bool) -> np.ndarray:
        """Sigmoid scores of each window: repeated windows scored once, the rest sorted by length and
        batched up to the token budget (under bfloat16 autocast if ``bf16``)."""
        import contextlib

        import torch

        first: dict[tuple, int] = {}
        source = [first.setdefault(tuple(w), k) for k, w in enumerate(windows)]
        self._count("repeated_windows", len(windows) - len(first))
        out = np.zeros((len(windows), len(self.labels)), dtype=np.float32)
        order = sorted(first.values(), key=lambda k: len(windows[k]))
        device_type = torch.device(self.settings.device).type
        autocast = torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            for batch in token_budget_batches(order, [len(w) for w in windows], self.settings.batch_tokens,
                                              self.settings.max_batch):
                enc = self.tokenizer.pad({"input_ids": [windows[k] for k in batch]}, return_tensors="pt")
                logits = model(**{k: v.to(self.settings.device) for k, v in enc.items()})[0]
                out[batch] = torch.sigmoid(logits.float()).cpu().numpy()
        return out[source]


PADDING_SLACK = 0.1  # padded tokens may exceed real ones by this share: on a CPU, padding costs full compute


def token_budget_batches(order: list[int], lengths: list[int], budget: int, max_batch: int,
                         slack: float = PADDING_SLACK) -> list[list[int]]:
    """Cut ``order`` (sorted by length) into batches whose padded size (count x longest) fits ``budget`` and
    exceeds the real token count by at most ``slack`` (a new batch starts where lengths jump)."""
    batches, cur, real = [], [], 0
    for k in order:
        padded = (len(cur) + 1) * lengths[k]
        if cur and (padded > budget or len(cur) >= max_batch or padded > (1 + slack) * (real + lengths[k])):
            batches.append(cur)
            cur, real = [], 0
        cur.append(k)
        real += lengths[k]
    if cur:
        batches.append(cur)
    return batches


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text (e.g. [CLS] and [SEP])."""
    probe = "hello world"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(bare) + 1):
        if full[k:k + len(bare)] == bare:
            return full[:k], full[k + len(bare):]
    raise InputError(f"cannot tell the special tokens of tokenizer {type(tokenizer).__name__}")


def model_max_length(tokenizer, config) -> int:
    """The longest input the model takes: the tokenizer's limit, else the model's position embeddings."""
    limit = getattr(tokenizer, "model_max_length", None)
    positions = getattr(config, "max_position_embeddings", None) or 512
    if not limit or limit > 1_000_000:
        limit = positions
    return int(min(limit, positions))


def quantize_int8(model):
    """int8 dynamic quantization of the Linear layers (CPU)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
