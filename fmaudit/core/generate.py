"""Text generation from a causal LM: greedy, or sampled with a seed (the same seed gives the same text)."""

from __future__ import annotations

from typing import Optional, Sequence

import torch


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 50, *, sample: bool = False,
             temperature: float = 1.0, top_k: Optional[int] = 50, top_p: float = 1.0, seed: int = 0) -> list[str]:
    """One continuation per prompt (the new text only, special tokens removed).

    Each prompt is generated on its own, after seeding with ``seed``, so a prompt's continuation does not
    depend on the other prompts or on padding.
    """
    from transformers import GenerationConfig

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=sample, pad_token_id=pad,
                              eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    if sample:
        config.temperature, config.top_k, config.top_p = temperature, top_k, top_p
    was_training = model.training
    model.eval()
    out = []
    for prompt in prompts:
        enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=True)
        if enc["input_ids"].shape[1] == 0:
            raise ValueError("an empty prompt needs a tokenizer that adds BOS")
        torch.manual_seed(seed)
        ids = model.generate(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                             generation_config=config)
        out.append(tokenizer.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    model.train(was_training)
    return out
