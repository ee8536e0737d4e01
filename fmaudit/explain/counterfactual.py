"""Counterfactual attribution: how much swapping a prompt's gendered words and names ("he"/"she",
"actor"/"actress", "John"/"Jennifer") changes the probability of a target. This is how a bias finding gets
explained: which swapped segment moves ``log p(target | prompt)``, and by how much.

The swappable segments are found with the CDA word pairs (:mod:`fmaudit.cda.wordlists`, the lists the ``cda``
stage uses); every occurrence of a word is one feature (swapped together, as CDA swaps them). Each feature is
a captum ``TextTemplateInput`` segment whose baseline is its counterpart, so captum's Shapley values give each
segment's share of ``log p(target | prompt) - log p(target | counterfactual prompt)``; the shares sum to that
difference exactly (efficiency), and the report gives the sum's gap as its delta. The contrastive view is
given too: the log-probability of the counterfactual target (the target with its own words swapped) under
the original prompt.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch

from fmaudit.explain.attribution import PERTURBATION_KWARGS, encode_pair, token_logprobs

_WORD = re.compile(r"\b[\w']+\b")
EXACT_SHAPLEY_MAX = 6  # features up to which Shapley values are computed exactly (2^n coalitions)


@dataclass
class CounterfactualAttribution:
    prompt: str
    counterfactual_prompt: str
    target: str
    counterfactual_target: str
    segments: list[dict] = field(default_factory=list)  # {"original", "swap", "occurrences", "attribution"}
    logprob: float = 0.0                 # log p(target | prompt)
    counterfactual_logprob: float = 0.0  # log p(target | counterfactual prompt)
    logprob_change: float = 0.0          # logprob - counterfactual_logprob
    contrastive_logprob: Optional[float] = None  # log p(counterfactual target | prompt), when it differs
    delta: float = 0.0                   # sum of segment attributions - logprob_change
    method: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def swappable_words(text: str, extra: Optional[dict[str, str]] = None) -> list[tuple[int, int, str, str]]:
    """``(start, end, word, counterpart)`` for each word of ``text`` that ``extra`` (lower-case word ->
    counterpart, both ways, e.g. ``{"doctor": "nurse"}``), the CDA names or the CDA gender pairs map."""
    from fmaudit.cda.wordlists import GENDER_PAIRS, GENDERED_NAMES, apply_case, load_pairs

    pairs, names = load_pairs(GENDER_PAIRS), load_pairs(GENDERED_NAMES, True)
    both = {**{v.lower(): k.lower() for k, v in (extra or {}).items()}, **{k.lower(): v.lower() for k, v in (extra or {}).items()}}
    out = []
    for m in _WORD.finditer(text):
        word = m.group(0)
        term = both.get(word.lower())
        if term is None:
            found = names.lookup(word) or pairs.lookup(word)
            term = found.target if found is not None else None
        if term is not None:
            out.append((m.start(), m.end(), word, apply_case(word, term)))
    return out


def swap_text(text: str, extra: Optional[dict[str, str]] = None) -> str:
    """``text`` with every swappable word replaced by its counterpart (a plain word-list swap)."""
    pieces, pos = [], 0
    for start, end, _, swap in swappable_words(text, extra):
        pieces += [text[pos:start], swap]
        pos = end
    return "".join(pieces + [text[pos:]])


def counterfactual_attribution(model, tokenizer, prompt: str, target: str, *, extra_pairs: Optional[dict] = None,
                               seed: int = 0, shapley_samples: int = 32) -> CounterfactualAttribution:
    """Attribute the change of ``log p(target | prompt)`` under the CDA swap (plus ``extra_pairs``) to each
    swapped segment."""
    from captum.attr import LLMAttribution, ShapleyValues, ShapleyValueSampling, TextTemplateInput

    prompt_ids, target_ids, _ = encode_pair(model, tokenizer, prompt, target)
    found = swappable_words(prompt, extra_pairs)
    cf_prompt, cf_target = swap_text(prompt, extra_pairs), swap_text(target, extra_pairs)
    result = CounterfactualAttribution(prompt, cf_prompt, target, cf_target)
    result.logprob = float(token_logprobs(model, prompt_ids, target_ids).sum())
    if cf_target != target:
        cf_ids = tokenizer(cf_target, add_special_tokens=False)["input_ids"]
        result.contrastive_logprob = float(token_logprobs(model, prompt_ids, cf_ids).sum())
    if not found:
        result.counterfactual_logprob, result.method = result.logprob, "none (no swappable word)"
        return result
    cf_ids = tokenizer(cf_prompt, add_special_tokens=True)["input_ids"]
    result.counterfactual_logprob = float(token_logprobs(model, cf_ids, target_ids).sum())
    result.logprob_change = result.logprob - result.counterfactual_logprob

    # template pieces around each swappable word; occurrences of one word share a feature (mask id)
    gaps, pos = [], 0
    for start, end, _, _ in found:
        gaps.append(prompt[pos:start])
        pos = end
    tail = prompt[pos:]
    keys = [w.lower() for _, _, w, _ in found]
    feature = {k: i for i, k in enumerate(dict.fromkeys(keys))}

    def fill(*values: str) -> str:
        return "".join(g + v for g, v in zip(gaps, values)) + tail

    inp = TextTemplateInput(fill, values=[w for _, _, w, _ in found], baselines=[s for _, _, _, s in found],
                            mask=[feature[k] for k in keys])
    exact = len(feature) <= EXACT_SHAPLEY_MAX
    algo = ShapleyValues(model) if exact else ShapleyValueSampling(model)
    kwargs = {} if exact else {"n_samples": shapley_samples}
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = LLMAttribution(algo, tokenizer).attribute(inp, target=torch.tensor(target_ids), **PERTURBATION_KWARGS,
                                                        **kwargs)
    per_feature = res.seq_attr.detach().float().cpu().tolist()  # scattered back to segments: one value each
    first = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    result.segments = [{"original": found[i][2], "swap": found[i][3], "occurrences": keys.count(k),
                        "attribution": float(per_feature[i])} for k, i in first.items()]
    result.delta = sum(s["attribution"] for s in result.segments) - result.logprob_change
    result.method = "shapley_values (exact)" if exact else f"shapley_value_sampling (n_samples={shapley_samples})"
    return result
