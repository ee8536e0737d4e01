"""The model under audit: one checkpoint, loaded once, shared by every audit of a run.

:class:`ModelUnderAudit` loads a local causal-LM folder safely (:func:`fmaudit.core.checkpoint.load_checkpoint`:
safetensors only, no remote code unless asked; ``device_map="auto"`` spreads a large checkpoint over several
GPUs with accelerate), computes the checkpoint's identity hash, and serves two cached, batched operations:

- :meth:`~ModelUnderAudit.logprobs`: log p(continuation | prompt) summed over the continuation's tokens. An
  empty prompt conditions on the BOS token (EOS where the tokenizer has none), as lm-evaluation-harness does,
  so a sentence's log-likelihood here is the harness's figure.
- :meth:`~ModelUnderAudit.generate`: continuations from left-padded batches with the KV cache. Sampling is
  seeded per prompt (:func:`item_seed`): each row draws its own Gumbel noise from its own generator, so a
  prompt's continuation does not depend on its batch, and every checkpoint gets the same random draws.

Both caches are keyed by what determines the result (prompt, continuation or decoding settings, seed),
so two audits asking for the same continuations share one generation pass.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from pydantic import Field

from fmaudit.core.checkpoint import checkpoint_sha256
from fmaudit.errors import InputError
from fmaudit.settings import Strict

class DecodingSettings(Strict):
    """How continuations are generated (recorded in every audit's protocol)."""

    max_new_tokens: int = Field(32, ge=1, le=4096, description="Tokens generated per continuation.")
    sample: bool = Field(True, description="Sample (seeded per prompt); false: greedy decoding.")
    temperature: float = Field(1.0, gt=0, description="Softmax temperature when sampling.")
    top_k: Optional[int] = Field(None, ge=1, description="Sample among the k most likely tokens; null: all.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass; 1: off.")


def item_seed(base_seed: int, key: str, sample: int = 0) -> int:
    """A 63-bit seed derived from the audit's seed, an item's key (its prompt) and the sample index."""
    digest = hashlib.sha256(f"{base_seed}\0{key}\0{sample}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class ModelUnderAudit:
    """A checkpoint loaded for auditing; read-only (eval mode, no gradients)."""

    def __init__(self, path: str | os.PathLike, *, device: Any = None, device_map: Any = None, dtype: Any = None,
                 trust_remote_code: bool = False, allow_pickle: bool = False, model=None, tokenizer=None):
        from fmaudit.core.checkpoint import load_checkpoint

        self.path = Path(path)
        if model is None:
            model, tokenizer = load_checkpoint(self.path, trust_remote_code=trust_remote_code,
                                               allow_pickle=allow_pickle, device=device, dtype=dtype,
                                               device_map=device_map)
        self.model, self.tokenizer = model.eval(), tokenizer
        self.sha256 = checkpoint_sha256(self.path) if self.path.is_dir() else None
        self._logprob_cache: dict[tuple[str, str], dict] = {}
        self._generation_cache: dict[tuple[str, str, int], str] = {}
        self.stats = {"logprob_hits": 0, "logprob_misses": 0, "generation_hits": 0, "generation_misses": 0}

    @property
    def device(self):
        return next(self.model.parameters()).device

    def describe(self) -> dict:
        cfg = self.model.config
        return {"path": str(self.path), "sha256": self.sha256, "model_type": cfg.model_type,
                "parameters": sum(p.numel() for p in self.model.parameters()), "device": str(self.device)}

    # -- log-probabilities -------------------------------------------------------------------------------------

    def prefix_token_id(self) -> int:
        tok = self.tokenizer
        tid = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if tid is None:
            raise InputError(f"{self.path}: the tokenizer has neither a BOS nor an EOS token to condition on")
        return tid

    def _encode(self, prompt: str, continuation: str, limit: int) -> tuple[list[int], int]:
        tok = self.tokenizer
        cont = tok(continuation, add_special_tokens=False)["input_ids"]
        if prompt:
            ctx = tok(prompt, add_special_tokens=True)["input_ids"]
        elif cont and cont[0] == self.prefix_token_id():  # the text already starts with the prefix token
            ctx, cont = cont[:1], cont[1:]
        else:
            ctx = [self.prefix_token_id()]
        ids = (ctx + cont)[-limit:]
        return ids, min(len(cont), len(ids) - 1)

    def logprobs(self, prompts: Sequence[str], continuations: Sequence[str], batch_size: int = 16) -> list[dict]:
        """Per pair ``{"logprob", "tokens"}``: log p(continuation | prompt) and the tokens scored. Cached."""
        from fmaudit.core.evaluate import _pad_id, context_length, score_token_ids

        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
        keys = list(zip(prompts, continuations))
        todo = list(dict.fromkeys(k for k in keys if k not in self._logprob_cache))
        self.stats["logprob_misses"] += len(todo)
        self.stats["logprob_hits"] += len(keys) - len(todo)
        if todo:
            limit = context_length(self.model, self.tokenizer)
            scored = score_token_ids(self.model, [self._encode(p, c, limit) for p, c in todo], batch_size,
                                     _pad_id(self.tokenizer))
            self._logprob_cache.update(zip(todo, scored))
        return [self._logprob_cache[k] for k in keys]

    def sequence_logprobs(self, texts: Sequence[str], batch_size: int = 16) -> list[dict]:
        """Per text: log-likelihood of all its tokens given the BOS (or EOS) prefix token."""
        return self.logprobs([""] * len(texts), texts, batch_size)

    # -- generation --------------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], decoding: DecodingSettings, seeds: Sequence[int],
                 batch_size: int = 16) -> list[str]:
        """One continuation per (prompt, seed): the new text only, special tokens removed. Cached."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        dkey = json.dumps(decoding.model_dump(), sort_keys=True)
        keys = [(p, dkey, int(s)) for p, s in zip(prompts, seeds)]
        todo = list(dict.fromkeys(k for k in keys if k not in self._generation_cache))
        self.stats["generation_misses"] += len(todo)
        self.stats["generation_hits"] += len(keys) - len(todo)
        if todo:
            encoded = [self._encode_prompt(p) for p, _, _ in todo]
            order = sorted(range(len(todo)), key=lambda i: -len(encoded[i]))
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                texts = self._generate_batch([encoded[i] for i in chunk], [todo[i][2] for i in chunk], decoding)
                for i, text in zip(chunk, texts):
                    self._generation_cache[todo[i]] = text
        return [self._generation_cache[k] for k in keys]

    def _encode_prompt(self, prompt: str) -> list[int]:
        from fmaudit.core.evaluate import context_length

        ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"] if prompt else [self.prefix_token_id()]
        if not ids:
            raise InputError("an empty prompt needs a tokenizer with a BOS or EOS token")
        return ids[-max(1, context_length(self.model, self.tokenizer) - 1):]

    def _generate_batch(self, encoded: list[list[int]], seeds: list[int], decoding: DecodingSettings) -> list[str]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        from fmaudit.core.evaluate import _pad_id, context_length

        tok = self.tokenizer
        pad = _pad_id(tok)
        width = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, ids in enumerate(encoded):  # left padding: every row's last prompt token is at the same column
            input_ids[i, width - len(ids):] = torch.tensor(ids)
            mask[i, width - len(ids):] = 1
        new = min(decoding.max_new_tokens, max(1, context_length(self.model, tok) - width))
        config = GenerationConfig(max_new_tokens=new, do_sample=False, pad_token_id=pad,
                                  eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id, use_cache=True)
        processors = LogitsProcessorList([_SeededSampler(seeds, decoding)] if decoding.sample else [])
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                                      generation_config=config, logits_processor=processors)
        return tok.batch_decode(out[:, width:], skip_special_tokens=True)


class _SeededSampler:
    """A logits processor that turns greedy decoding into sampling with one generator per row (Gumbel-max:
    argmax(log p + Gumbel noise) is a draw from p), after temperature, top-k and top-p as in transformers."""

    def __init__(self, seeds: Sequence[int], decoding: DecodingSettings):
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.warpers = []
        if decoding.temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(decoding.temperature))
        if decoding.top_k is not None:
            self.warpers.append(TopKLogitsWarper(decoding.top_k))
        if decoding.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(decoding.top_p))

    def __call__(self, input_ids, scores):
        import torch

        scores = torch.log_softmax(scores.float(), dim=-1)
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        u = torch.stack([torch.rand(scores.shape[-1], generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))
        return scores + gumbel.to(scores.device, scores.dtype)
