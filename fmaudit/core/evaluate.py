"""Log-likelihood and perplexity of texts under a causal LM (any transformers checkpoint), for training
evaluation and for the audits.

The log-likelihood of a text is the sum over its tokens of log p(token | previous tokens); the first
token is scored only when the tokenizer adds BOS (as fmaudit's and Llama's do). Texts longer than the
model's context are truncated to it (the result says how many tokens were scored).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def context_length(model, tokenizer) -> int:
    cfg = model.config
    n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    return int(n or min(tokenizer.model_max_length, 4096))


@torch.no_grad()
def continuation_logprobs(model, tokenizer, prompts: Sequence[str], continuations: Sequence[str],
                          batch_size: int = 8) -> list[dict]:
    """Per pair: ``{"logprob": sum log p(continuation tokens | prompt), "tokens": n}``.

    The prompt is encoded with the tokenizer's special tokens (BOS), the continuation without, and the
    two are concatenated, so the continuation is scored exactly as the model would generate it.
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    limit = context_length(model, tokenizer)
    pairs = []
    for prompt, cont in zip(prompts, continuations):
        p = tokenizer(prompt, add_special_tokens=True)["input_ids"] if prompt else _bos(tokenizer)
        c = tokenizer(cont, add_special_tokens=False)["input_ids"]
        ids = (p + c)[-limit:] if len(p) + len(c) > limit else p + c
        pairs.append((ids, min(len(c), len(ids) - 1)))
    return _score(model, pairs, batch_size, _pad_id(tokenizer))


@torch.no_grad()
def sequence_logprobs(model, tokenizer, texts: Sequence[str], batch_size: int = 8) -> list[dict]:
    """Per text: ``{"logprob": sum of log p(token | prefix), "tokens": tokens scored}``."""
    limit = context_length(model, tokenizer)
    pairs = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"][:limit]
        pairs.append((ids, len(ids) - 1))
    return _score(model, pairs, batch_size, _pad_id(tokenizer))


def perplexity(model, tokenizer, texts: Sequence[str], batch_size: int = 8) -> float:
    """exp(- total log-likelihood / total tokens scored) over ``texts``."""
    rows = sequence_logprobs(model, tokenizer, texts, batch_size)
    n = sum(r["tokens"] for r in rows)
    if n == 0:
        raise ValueError("no tokens to score")
    return math.exp(-sum(r["logprob"] for r in rows) / n)


def _bos(tokenizer) -> list[int]:
    if tokenizer.bos_token_id is None:
        raise ValueError("an empty prompt needs a tokenizer with a BOS token")
    return [tokenizer.bos_token_id]


def _pad_id(tokenizer) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return tid
    return 0


@torch.no_grad()
def score_token_ids(model, pairs: Sequence[tuple[list[int], int]], batch_size: int, pad_id: int) -> list[dict]:
    """Per ``(ids, n)``: ``{"logprob": sum of log p of the last n tokens of ids, "tokens": n}``, in input order.

    Sequences are batched longest first, so a batch pads little (the order does not change the figures)."""
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]))
    scored = _score(model, [pairs[i] for i in order], batch_size, pad_id)
    out: list[dict] = [{}] * len(pairs)
    for i, row in zip(order, scored):
        out[i] = row
    return out


def _score(model, pairs: list[tuple[list[int], int]], batch_size: int, pad_id: int) -> list[dict]:
    """Sum of log-probabilities of the last ``n`` tokens of each id list (right-padded batches)."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    out: list[dict] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        for i, (ids, _) in enumerate(chunk):
            input_ids[i, :len(ids)] = torch.tensor(ids)
        # Right padding under causal attention: no real token attends to the pads after it, so no attention
        # mask is needed (as in lm-evaluation-harness), and attention keeps its fused causal kernel.
        logits = model(input_ids=input_ids.to(device)).logits.float()
        # log p(token) = logit(token) - logsumexp(logits): no (batch, length, vocab) log-softmax tensor is made.
        shifted = logits[:, :-1]
        picked = shifted.gather(-1, input_ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        logp = (picked - torch.logsumexp(shifted, dim=-1)).cpu()
        for i, (ids, n) in enumerate(chunk):
            end = len(ids) - 1  # logp[j] scores token j+1
            out.append({"logprob": float(logp[i, end - n:end].sum()) if n > 0 else 0.0, "tokens": max(n, 0)})
    model.train(was_training)
    return out


@torch.no_grad()
def mean_token_loss(model, batches, autocast=None) -> Optional[tuple[float, int]]:
    """(summed next-token loss, tokens) over packed ``(B, L)`` input-id batches (no padding); None if empty."""
    import contextlib

    device = model_device(model)
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        with autocast or contextlib.nullcontext():
            loss = model(input_ids=batch, labels=batch).loss.float()
        n = batch.shape[0] * (batch.shape[1] - 1)
        total += float(loss) * n
        tokens += n
    model.train(was_training)
    return (total, tokens) if tokens else None
