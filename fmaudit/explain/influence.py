"""Influence of training documents on a model's outputs: EK-FAC influence functions with kronfluence.

The influence of training document d on query q (a text, or a prompt and its completion) is
``grad L_q^T (G + lambda I)^-1 grad L_d``, with ``G`` the EK-FAC approximation of the Gauss-Newton Hessian
(Grosse et al. 2023, "Studying Large Language Model Generalization with Influence Functions") and ``L`` the
summed next-token loss (of the completion only, for a query with a prompt). A positive score means that
up-weighting d lowers the query's loss: d is a proponent of the output; a negative one, an opponent.

:class:`InfluenceAnalysis` fits the factors once per (checkpoint, corpus, module selection, settings) and
keeps them in a cache folder under that key; scoring is cheap afterwards. Candidates can be pre-selected by
TF-IDF similarity to the queries (:mod:`fmaudit.explain.prefilter`), as the 52B study did, and queries are
scored in batches (optionally with low-rank query gradients, ``query_rank``).

kronfluence tracks only ``nn.Linear`` and ``nn.Conv2d`` modules: GPT-2's ``Conv1D`` layers would be skipped
silently, so :func:`tracked_modules` refuses a selection that finds no linear layer.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Literal, Optional, Sequence, Union

import numpy as np
import torch
from pydantic import Field

from fmaudit.errors import InputError
from fmaudit.settings import Strict

Query = Union[str, tuple[str, str]]  # a text, or (prompt, completion): only the completion is measured
FACTORS_NAME = "factors"
DONE = "complete.json"
_LAYER = re.compile(r"\blayers?\.(\d+)\.|\bh\.(\d+)\.")


class InfluenceSettings(Strict):
    """How influence is computed (these settings, but for the batch sizes, are part of the factor cache key)."""

    modules: Literal["mlp", "attention", "all"] = Field(
        "mlp", description="Linear layers tracked: the MLPs (as the 52B study), attention projections, or both.")
    strategy: Literal["ekfac", "kfac", "diagonal", "identity"] = Field(
        "ekfac", description="Hessian approximation (kronfluence strategy); identity = plain gradient dot products.")
    max_length: int = Field(128, ge=4, le=8192, description="Tokens of a document scored (longer are truncated).")
    damping: Optional[float] = Field(None, gt=0, description="Damping lambda; None: 0.1 x mean eigenvalue.")
    empirical_fisher: bool = Field(True, description="Fit the factors with the documents' own tokens as labels "
                                                     "(reproducible) instead of labels sampled from the model.")
    fit_max_documents: Optional[int] = Field(None, ge=1, description="Fit the factors on at most this many "
                                             "documents (the first ones); None: all of them.")
    query_rank: Optional[int] = Field(None, ge=1, description="Low-rank query gradients (query batching); "
                                                              "None: exact query gradients.")
    batch_size: int = Field(8, ge=1, le=4096, description="Documents per batch when fitting and scoring.")

    def cache_fields(self) -> dict:
        return self.model_dump(include={"modules", "strategy", "max_length", "empirical_fisher", "fit_max_documents"})


class TokenDocs(torch.utils.data.Dataset):
    """Encoded texts, right-padded to one width: ``input_ids``, ``attention_mask`` and ``labels`` (-100 where a
    token is not measured: padding, and the prompt of a (prompt, completion) query)."""

    def __init__(self, tokenizer, items: Sequence[Query], max_length: int):
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        rows = []
        for item in items:
            prompt, completion = item if isinstance(item, tuple) else ("", item)
            p = tokenizer(prompt, add_special_tokens=True)["input_ids"] if prompt else \
                tokenizer("", add_special_tokens=True)["input_ids"]
            c = tokenizer(completion, add_special_tokens=False)["input_ids"]
            ids = (p + c)[:max_length]
            labels = ([-100] * len(p) + c)[:max_length]
            if sum(l != -100 for l in labels[1:]) == 0:
                raise InputError(f"nothing to measure in {completion[:40]!r}: it has no token within "
                                 f"{max_length} tokens after its prompt")
            rows.append((ids, labels))
        width = max(len(ids) for ids, _ in rows)
        n = len(rows)
        self.input_ids = torch.full((n, width), pad, dtype=torch.long)
        self.attention_mask = torch.zeros((n, width), dtype=torch.long)
        self.labels = torch.full((n, width), -100, dtype=torch.long)
        for i, (ids, labels) in enumerate(rows):
            self.input_ids[i, :len(ids)] = torch.tensor(ids)
            self.attention_mask[i, :len(ids)] = 1
            self.labels[i, :len(labels)] = torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], "attention_mask": self.attention_mask[i], "labels": self.labels[i]}


def _lm_loss(batch: dict, model, sample: bool = False) -> torch.Tensor:
    """Summed next-token cross-entropy of the measured tokens (labels sampled from the model with ``sample``)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    logits = logits[:, :-1].reshape(-1, logits.size(-1))
    labels = batch["labels"][:, 1:].reshape(-1)
    if sample:
        with torch.no_grad():
            sampled = torch.multinomial(torch.softmax(logits.detach(), -1), 1).flatten()
            labels = torch.where(labels == -100, labels, sampled)
    return torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")


def _task(modules: list[str]):
    from kronfluence.task import Task

    class CausalLMTask(Task):
        """Next-token loss for fitting and training gradients; the query's (completion) loss as measurement."""

        def compute_train_loss(self, batch, model, sample=False):
            return _lm_loss(batch, model, sample)

        def compute_measurement(self, batch, model):
            return _lm_loss(batch, model)

        def get_influence_tracked_modules(self):
            return modules

        def get_attention_mask(self, batch):
            return batch["attention_mask"]

    return CausalLMTask()


def tracked_modules(model, selection: str) -> list[str]:
    """Names of the ``nn.Linear`` layers of the transformer blocks that ``selection`` picks (never the
    embeddings or the LM head). InputError when there is none (e.g. GPT-2's Conv1D layers)."""
    want = {"mlp": ("mlp",), "attention": ("attn", "attention"), "all": ("mlp", "attn", "attention")}[selection]
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and _layer_of(n) is not None
             and any(w in n.split(".")[-2] for w in want)]
    if not names:
        kinds = sorted({type(m).__name__ for n, m in model.named_modules() if _layer_of(n) is not None})
        raise InputError(f"no nn.Linear {selection} layers to track in this {type(model).__name__} (it has "
                         f"{', '.join(kinds[:6])}); kronfluence supports only nn.Linear and nn.Conv2d")
    return names


def _layer_of(name: str) -> Optional[int]:
    m = _LAYER.search(name + ".")
    return int(m.group(1) or m.group(2)) if m else None


def documents_hash(docs) -> str:
    """sha256 over the ids and texts of documents, in order."""
    h = hashlib.sha256()
    for d in docs:
        h.update(json.dumps([d.id, d.text], ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def default_cache_dir() -> Path:
    root = os.environ.get("FMAUDIT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                           os.path.expanduser("~/.cache"), "fmaudit")
    return Path(root) / "influence"


class InfluenceAnalysis:
    """EK-FAC factors of one model on one list of training documents, and the scores they give.

    ``fit()`` computes the factors, or loads them from ``cache_dir/<key>`` where key hashes the checkpoint,
    the documents, the tracked modules and the settings. Fitted state: ``key_``, ``factors_dir_``,
    ``fit_seconds_`` and ``cache_hit_``. kronfluence prepares the model in place (parameters frozen, tracked
    layers wrapped): the analysis works on a copy unless ``in_place`` (for a model loaded only for it).
    """

    def __init__(self, model, tokenizer, documents: Sequence, *, settings: Optional[InfluenceSettings] = None,
                 cache_dir: Optional[str | os.PathLike] = None, model_hash: Optional[str] = None,
                 in_place: bool = False):
        if not documents:
            raise InputError("no training documents to compute influence on")
        self.settings = settings or InfluenceSettings()
        self.tokenizer, self.documents = tokenizer, list(documents)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.modules = tracked_modules(model, self.settings.modules)
        self.model_hash = model_hash or _weights_hash(model)
        self.data_hash = documents_hash(self.documents)
        self.train_data = TokenDocs(tokenizer, [d.text for d in self.documents], self.settings.max_length)
        self.model = model if in_place else copy.deepcopy(model)

    def fit(self) -> "InfluenceAnalysis":
        from kronfluence.arguments import FactorArguments

        s = self.settings
        key_src = {"model": self.model_hash, "data": self.data_hash, "modules": self.modules, **s.cache_fields()}
        self.key_ = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:24]
        self.factors_dir_ = self.cache_dir / self.key_
        self.cache_hit_ = (self.factors_dir_ / DONE).exists()
        t0 = time.perf_counter()
        self._analyzer = self._make_analyzer()
        if not self.cache_hit_:
            shutil.rmtree(self.factors_dir_ / "analysis", ignore_errors=True)  # a fit killed half-way
            torch.manual_seed(0)
            args = FactorArguments(strategy=s.strategy, use_empirical_fisher=s.empirical_fisher,
                                   covariance_max_examples=s.fit_max_documents, lambda_max_examples=s.fit_max_documents)
            with _quiet():
                self._analyzer.fit_all_factors(factors_name=FACTORS_NAME, dataset=self.train_data, factor_args=args,
                                               per_device_batch_size=s.batch_size, overwrite_output_dir=True)
            (self.factors_dir_ / DONE).write_text(json.dumps(key_src, indent=2) + "\n")
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _make_analyzer(self):
        from kronfluence.analyzer import Analyzer, prepare_model

        logging.getLogger("kronfluence").setLevel(logging.WARNING)
        self.factors_dir_.mkdir(parents=True, exist_ok=True)
        self.model = prepare_model(self.model, _task(self.modules))  # in place: frozen, Linears wrapped
        return Analyzer("analysis", self.model, _task(self.modules), cpu=not torch.cuda.is_available(),
                        disable_tqdm=True, output_dir=str(self.factors_dir_), log_level=logging.WARNING)

    def score(self, queries: Sequence[Query], doc_indices: Optional[Sequence[int]] = None, *,
              per_token: bool = False) -> dict[str, np.ndarray]:
        """Pairwise scores of ``queries`` against the documents at ``doc_indices`` (default: all).

        Returns ``{"all": (n_queries, n_docs)}`` plus, per tracked module, its share ``{module: (nq, nd)}``;
        with ``per_token``, ``{"tokens": (nq, nd, width)}`` instead (each training token's share).
        """
        from kronfluence.arguments import ScoreArguments

        if not hasattr(self, "key_"):
            raise RuntimeError("call fit() first")
        s = self.settings
        query_data = TokenDocs(self.tokenizer, list(queries), self.settings.max_length)
        indices = list(range(len(self.documents))) if doc_indices is None else [int(i) for i in doc_indices]
        args = ScoreArguments(damping_factor=s.damping, query_gradient_low_rank=s.query_rank,
                              compute_per_module_scores=not per_token, compute_per_token_scores=per_token)
        name = "scores_tokens" if per_token else "scores"
        torch.manual_seed(0)  # low-rank query gradients use a randomized SVD
        with _quiet():
            self._analyzer.compute_pairwise_scores(
                scores_name=name, factors_name=FACTORS_NAME, query_dataset=query_data, train_dataset=self.train_data,
                train_indices=indices, per_device_query_batch_size=min(len(query_data), s.batch_size),
                per_device_train_batch_size=s.batch_size, score_args=args, overwrite_output_dir=True)
        raw = self._analyzer.load_pairwise_scores(name)
        shutil.rmtree(self.factors_dir_ / "analysis" / f"scores_{name}", ignore_errors=True)
        if per_token:
            return {"tokens": raw["all_modules"].float().numpy()}
        per_module = {k: v.float().numpy() for k, v in raw.items()}
        return {"all": sum(per_module.values()), **per_module}


@contextlib.contextmanager
def _quiet():
    """kronfluence 1.0.1 calls the deprecated ``torch.cuda.amp.GradScaler`` (a FutureWarning per call)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*GradScaler.*", category=FutureWarning)
        yield


def _weights_hash(model) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def per_layer(scores: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Module scores summed by transformer layer index."""
    out: dict[int, np.ndarray] = {}
    for name, value in scores.items():
        layer = _layer_of(name) if name != "all" else None
        if layer is not None:
            out[layer] = out.get(layer, 0) + value
    return dict(sorted(out.items()))
