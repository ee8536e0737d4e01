"""Before/after measurement of a refusal tune: greedy chat responses to held-out prompts, judged by the refusal
classifier (:mod:`fmaudit.scoring.refusal`), and held-out perplexity on ordinary text.

- refusal rate: share of *unsafe* prompts answered with a full or partial refusal;
- over-refusal rate: share of *safe* prompts (the contrast prompts) refused;
- both per prompt ``type`` (harm category or contrast type), and the refusal rate per perturbation of the
  unsafe prompts (:mod:`fmaudit.tune.refusal.perturb`); every rate with its Wilson 95% interval.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Optional, Sequence

import torch

from fmaudit.core.chat import prompt_ids
from fmaudit.scoring.refusal import RefusalScorer
from fmaudit.stats import wilson
from fmaudit.tune.refusal.inputs import PromptRow
from fmaudit.tune.refusal.perturb import perturb


@torch.no_grad()
def chat_responses(model, tokenizer, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
    """Greedy responses to each prompt, formatted as a user turn with the chat template (one at a time, so a
    response does not depend on padding or the other prompts)."""
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", 2048)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    out = []
    for prompt in prompts:
        ids = prompt_ids(tokenizer, prompt)[-(limit - max_new_tokens):]
        config = GenerationConfig(max_new_tokens=min(max_new_tokens, limit - len(ids)), do_sample=False,
                                  pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        x = torch.tensor([ids], device=device)
        y = model.generate(input_ids=x, attention_mask=torch.ones_like(x), generation_config=config)
        out.append(tokenizer.decode(y[0, len(ids):], skip_special_tokens=True).strip())
    model.train(was_training)
    return out


def measure(model, tokenizer, rows: Sequence[PromptRow], perturbations: Sequence[str], seed: int,
            max_new_tokens: int) -> list[dict]:
    """One item per prompt (and per perturbation of each unsafe prompt): prompt, type, label, perturbation,
    response, the classifier's label and whether it refused."""
    cases = [(r, None, r.prompt) for r in rows]
    cases += [(r, p, perturb(r.prompt, p, seed)) for p in perturbations for r in rows if r.unsafe]
    responses = chat_responses(model, tokenizer, [text for _, _, text in cases], max_new_tokens)
    verdicts = RefusalScorer().verdicts(responses, [text for _, _, text in cases])
    return [{"prompt": text, "type": r.type, "label": r.label, "perturbation": p, "response": resp,
             "verdict": v.label, "refused": v.refused, **({"extra": r.extra} if r.extra else {})}
            for (r, p, text), resp, v in zip(cases, responses, verdicts)]


def rate(items: Sequence[dict]) -> Optional[dict]:
    """``{"rate", "ci", "refused", "n"}`` of the refusals among ``items`` (None when there are none)."""
    n, k = len(items), sum(bool(i["refused"]) for i in items)
    if n == 0:
        return None
    lo, hi = wilson(k, n)
    return {"rate": k / n, "ci": [lo, hi], "refused": k, "n": n}


def summarize(items: Sequence[dict]) -> dict:
    """Refusal rate (unsafe), over-refusal rate (safe), each per type, and the refusal rate per perturbation."""
    plain = [i for i in items if i["perturbation"] is None]
    unsafe = [i for i in plain if i["label"] == "unsafe"]
    safe = [i for i in plain if i["label"] == "safe"]
    out = {"refusal_rate": rate(unsafe), "over_refusal_rate": rate(safe),
           "refusal_by_type": _by(unsafe, "type"), "over_refusal_by_type": _by(safe, "type"),
           "refusal_by_perturbation": _by([i for i in items if i["perturbation"] is not None], "perturbation")}
    return out


def _by(items: Sequence[dict], key: str) -> dict:
    groups = defaultdict(list)
    for i in items:
        groups[i[key]].append(i)
    return {k: rate(v) for k, v in sorted(groups.items())}
