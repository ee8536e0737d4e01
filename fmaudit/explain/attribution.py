"""Token attribution with captum: which prompt tokens drove a continuation.

:func:`attribute` explains one (prompt, target) pair of a causal LM. The target is given, or generated
greedily. Three captum methods attribute ``log p(target | prompt)`` to the prompt's tokens (BOS is kept,
never attributed):

- ``feature_ablation``: ``LLMAttribution(FeatureAblation)``; a token's score is the drop of the log-prob when
  that token alone is replaced by the baseline token;
- ``shapley_sampling``: ``LLMAttribution(ShapleyValueSampling)``; Shapley values estimated on sampled
  permutations;
- ``integrated_gradients``: ``LLMGradientAttribution(LayerIntegratedGradients)`` on the input embeddings,
  from the embeddings of the baseline token to those of the prompt.

Each gives a sequence-level vector (one score per prompt token, for the whole target) and a token-level
matrix (one row per target token). Completeness is checked against plain forward passes: for each target
token t, ``delta_t = sum(attr[t]) - (log p_t(prompt) - log p_t(baseline prompt))``, the convergence delta
of integrated gradients. Shapley values satisfy completeness exactly (every permutation telescopes), so
their delta is float noise; feature ablation has no such axiom and its delta is reported as an
additivity gap, not a failure.

captum's default ``use_cached_outputs=True`` scores every target token after the first wrongly with
transformers 5.x (its KV-cache path re-feeds the sequence); fmaudit always passes ``False`` and
scores the target in one forward pass (``forward_in_tokens=False``), which a test compares with a plain
forward pass.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import torch

from fmaudit.errors import InputError, UsageError

METHODS = ("feature_ablation", "shapley_sampling", "integrated_gradients")
PERTURBATION_KWARGS = dict(use_cached_outputs=False, forward_in_tokens=False)


@dataclass
class MethodAttribution:
    """One method's attribution of the target to the prompt tokens.

    ``seq_attr[i]``: prompt token i's share of the whole target's log-prob; ``token_attr[t][i]``: of target
    token t's. ``logprob_change[t]`` = log p_t(prompt) - log p_t(baseline prompt) from plain forward passes,
    ``deltas[t]`` = sum(token_attr[t]) - logprob_change[t]; ``convergence_delta`` is their sum.
    """

    method: str
    seq_attr: list[float]
    token_attr: list[list[float]]
    logprob_change: list[float]
    deltas: list[float]
    convergence_delta: float
    settings: dict = field(default_factory=dict)

    @property
    def completeness_holds(self) -> bool:
        """Whether the method's axioms promise completeness (feature ablation: no)."""
        return self.method != "feature_ablation"


@dataclass
class Explanation:
    """A continuation of a prompt and the attributions of its log-probability to the prompt tokens."""

    prompt: str
    target: str
    target_generated: bool
    input_tokens: list[str]   # the attributed prompt tokens (BOS excluded), as decoded text
    output_tokens: list[str]  # the target tokens, as decoded text
    input_ids: list[int]      # the full prompt ids (BOS included)
    target_ids: list[int]
    baseline_token: str
    target_logprob: float           # log p(target | prompt), plain forward pass
    token_logprobs: list[float]     # per target token
    baseline_logprob: float         # log p(target | all prompt tokens replaced by the baseline)
    attributions: dict[str, MethodAttribution] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = asdict(self)
        out["attributions"] = {k: asdict(v) for k, v in self.attributions.items()}
        return out


def baseline_id(tokenizer) -> int:
    """The token that stands for an absent prompt token: pad, else unk, else EOS (never id 0 by accident)."""
    for tid in (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    raise InputError("the tokenizer has no pad, unk or EOS token to use as an attribution baseline")


def encode_pair(model, tokenizer, prompt: str, target: Optional[str], max_new_tokens: int = 20) -> tuple[list[int], list[int], bool]:
    """``(prompt ids with BOS, target ids, generated?)``; the target is generated greedily when not given.

    InputError for an empty prompt, a target that encodes to nothing, or prompt + target longer than the
    model's context.
    """
    from fmaudit.core.evaluate import context_length

    if not prompt or not prompt.strip():
        raise InputError("the prompt is empty: give the text whose continuation is to be explained")
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    limit = context_length(model, tokenizer)
    if target is not None:
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        if not target_ids:
            raise InputError("the target is empty: give a non-empty --target, or none to generate one")
        generated = False
    else:
        if len(prompt_ids) >= limit:
            raise InputError(f"the prompt has {len(prompt_ids)} tokens; the model's context is {limit}")
        target_ids = greedy_ids(model, tokenizer, prompt_ids, min(max_new_tokens, limit - len(prompt_ids)))
        if not target_ids:
            raise InputError(f"the model generated no text after {prompt!r} (it ended at once); give --target")
        generated = True
    if len(prompt_ids) + len(target_ids) > limit:
        raise InputError(f"prompt ({len(prompt_ids)} tokens) + target ({len(target_ids)} tokens) is longer than "
                         f"the model's context of {limit} tokens")
    return prompt_ids, target_ids, generated


@torch.no_grad()
def greedy_ids(model, tokenizer, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """Greedy continuation ids (EOS and what follows removed)."""
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                              eos_token_id=tokenizer.eos_token_id)
    ids = torch.tensor([prompt_ids], device=device)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
    new = out[0, len(prompt_ids):].tolist()
    if tokenizer.eos_token_id in new:
        new = new[:new.index(tokenizer.eos_token_id)]
    return new


@torch.no_grad()
def token_logprobs(model, prompt_ids: Sequence[int], target_ids: Sequence[int]) -> torch.Tensor:
    """log p(target token t | prompt, target[:t]) for each t, from one plain forward pass (no cache)."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(target_ids)], device=device)
    logits = model(input_ids=ids, use_cache=False).logits[0].float()
    logp = torch.log_softmax(logits[len(prompt_ids) - 1:-1], dim=-1)
    return logp.gather(-1, torch.tensor(list(target_ids), device=device).unsqueeze(-1)).squeeze(-1).cpu()


def attribute(model, tokenizer, prompt: str, target: Optional[str] = None, *, methods: Sequence[str] = METHODS,
              max_new_tokens: int = 20, shapley_samples: int = 16, ig_steps: int = 64, seed: int = 0) -> Explanation:
    """Explain ``target`` (or the greedy continuation) of ``prompt`` with the captum ``methods``.

    Deterministic for a given ``seed`` (Shapley sampling draws permutations from torch's generator).
    """
    from captum.attr import TextTokenInput

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UsageError(f"unknown attribution method {unknown[0] if unknown else ''!r}; available: {', '.join(METHODS)}")
    model.eval()
    prompt_ids, target_ids, generated = encode_pair(model, tokenizer, prompt, target, max_new_tokens)
    base = baseline_id(tokenizer)
    skip = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else None
    inp = TextTokenInput(prompt, tokenizer, baselines=base, skip_tokens=skip)
    if inp.inp_tensor[0].tolist() != prompt_ids:  # TextTokenInput encodes with tokenizer.encode
        raise InputError("the tokenizer encodes the prompt differently through encode() and __call__()")
    if inp.n_itp_features == 0:
        raise InputError("the prompt has no tokens to attribute (only special tokens)")
    feature_pos = [i for i, t in enumerate(prompt_ids) if skip is None or t not in skip]
    baseline_ids = [base if i in set(feature_pos) else t for i, t in enumerate(prompt_ids)]
    lp = token_logprobs(model, prompt_ids, target_ids)
    lp_base = token_logprobs(model, baseline_ids, target_ids)
    change = (lp - lp_base).tolist()
    target_tensor = torch.tensor(target_ids)

    expl = Explanation(
        prompt=prompt, target=tokenizer.decode(target_ids), target_generated=generated,
        input_tokens=[tokenizer.decode([prompt_ids[i]]) for i in feature_pos],
        output_tokens=[tokenizer.decode([t]) for t in target_ids], input_ids=list(prompt_ids),
        target_ids=list(target_ids), baseline_token=tokenizer.convert_ids_to_tokens(base),
        target_logprob=float(lp.sum()), token_logprobs=lp.tolist(), baseline_logprob=float(lp_base.sum()))
    for method in methods:
        torch.manual_seed(seed)
        with warnings.catch_warnings():  # captum warns while making 'pretty' output tokens; fmaudit decodes its own
            warnings.simplefilter("ignore", UserWarning)
            res, settings = _run_method(method, model, tokenizer, inp, target_tensor, shapley_samples, ig_steps)
        settings = {**settings, "baseline_token": expl.baseline_token, "seed": seed}
        token_attr = res.token_attr.detach().float().cpu()
        deltas = (token_attr.sum(1) - torch.tensor(change)).tolist()
        expl.attributions[method] = MethodAttribution(
            method=method, seq_attr=res.seq_attr.detach().float().cpu().tolist(), token_attr=token_attr.tolist(),
            logprob_change=change, deltas=deltas, convergence_delta=float(sum(deltas)), settings=settings)
    return expl


def _run_method(method: str, model, tokenizer, inp, target: torch.Tensor, shapley_samples: int, ig_steps: int):
    """``(captum LLMAttributionResult, settings used)`` of one method."""
    from captum.attr import (FeatureAblation, LayerIntegratedGradients, LLMAttribution, LLMGradientAttribution,
                             ShapleyValueSampling)

    if method == "integrated_gradients":
        lig = LayerIntegratedGradients(model, model.get_input_embeddings())
        res = LLMGradientAttribution(lig, tokenizer).attribute(inp, target=target, n_steps=ig_steps,
                                                               internal_batch_size=ig_steps)
        return res, {"n_steps": ig_steps, "layer": "input embeddings"}
    if method == "feature_ablation":
        algo, kwargs = FeatureAblation(model), {}
    else:
        algo, kwargs = ShapleyValueSampling(model), {"n_samples": shapley_samples}
    res = LLMAttribution(algo, tokenizer).attribute(inp, target=target, **PERTURBATION_KWARGS, **kwargs)
    return res, {**kwargs, **PERTURBATION_KWARGS}


def captum_logprobs(model, tokenizer, prompt: str, target: str, *, forward_in_tokens: bool = False,
                    use_cached_outputs: bool = False) -> list[float]:
    """The per-token log-probs of ``target`` that captum's perturbation wrapper computes for the unperturbed
    prompt (a check that captum scores what the model would: see the module docstring)."""
    from captum.attr import FeatureAblation, LLMAttribution, TextTokenInput

    inp = TextTokenInput(prompt, tokenizer, baselines=baseline_id(tokenizer))
    wrapper = LLMAttribution(FeatureAblation(model), tokenizer)
    target_ids = torch.tensor(tokenizer(target, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        out = wrapper._forward_func(inp.to_tensor(), inp, target_ids, use_cached_outputs,
                                    None, forward_in_tokens)
    return out[0, 1:].tolist()
