"""Token attribution (captum): captum scores what a plain forward pass scores, attributions are complete
within the reported convergence delta, and feature ablation finds a planted dependency."""

from __future__ import annotations

import random

import pytest
import torch

pytest.importorskip("captum")

from fmaudit.errors import InputError  # noqa: E402
from fmaudit.explain.attribution import attribute, baseline_id, captum_logprobs  # noqa: E402

FILLER = "cat dog sat ran mat park tree river house ball".split()
KEYS = {"red": "one", "blue": "two", "green": "three", "<|pad|>": "none"}


@pytest.fixture(scope="module")
def random_lm(lm_job):
    """A randomly initialised llama-tiny with the lm_job tokenizer (context 64)."""
    from fmaudit.core.config import ModelSettings
    from fmaudit.core.model import build_config, build_model
    from fmaudit.core.tokenizer import load_tokenizer

    tok = load_tokenizer(lm_job["tokenizer"])
    config = build_config(ModelSettings(preset="llama-tiny"), len(tok), 64, tok.bos_token_id, tok.eos_token_id,
                          tok.pad_token_id)
    return build_model(config, seed=1).eval(), tok


@pytest.fixture(scope="module")
def planted_lm():
    """A llama-tiny trained on 'KEY w w w ANSWER' where the first word alone decides the last; filler words
    (and, with answer 'none', the key) are sometimes the pad token, so the pad baseline means 'absent'."""
    from fmaudit.core.tokenizer import train_tokenizer
    from fmaudit.testing.tiny_lm import train_tiny_lm

    rng = random.Random(0)
    docs = []
    for _ in range(300):
        key = rng.choice(list(KEYS))
        words = [rng.choice(FILLER) if rng.random() > 0.2 else "<|pad|>" for _ in range(3)]
        docs.append(" ".join([key, *words, KEYS[key]]))
    tok = train_tokenizer([d.replace("<|pad|>", "") for d in docs], 400)
    return train_tiny_lm(docs, tok, steps=150, lr=5e-3, batch_size=16), tok


def plain_logprobs(model, prompt_ids, target_ids) -> torch.Tensor:
    """log p(target_t | prompt, target_<t) from model(...).logits, written out here apart from the library."""
    ids = torch.tensor([prompt_ids + target_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    return torch.stack([logp[len(prompt_ids) - 1 + t, tid] for t, tid in enumerate(target_ids)])


def test_captum_logprobs_match_a_plain_forward_pass(random_lm):
    from fmaudit.core.evaluate import continuation_logprobs

    model, tok = random_lm
    prompt, target = "the cat sat on the", " mat near the red house"
    ref = plain_logprobs(model, tok(prompt)["input_ids"], tok(target, add_special_tokens=False)["input_ids"])
    assert len(ref) > 2  # several target tokens: the cache trap hits only tokens after the first
    for in_tokens in (False, True):
        got = captum_logprobs(model, tok, prompt, target, forward_in_tokens=in_tokens, use_cached_outputs=False)
        assert got == pytest.approx(ref.tolist(), abs=1e-4)
    total = continuation_logprobs(model, tok, [prompt], [target])[0]["logprob"]
    assert sum(ref.tolist()) == pytest.approx(total, abs=1e-3)


def test_attributions_sum_to_the_logprob_difference_within_the_delta(random_lm):
    model, tok = random_lm
    prompt, target = "the big dog ran under the old", " tree near the river"
    e = attribute(model, tok, prompt, target, shapley_samples=4, ig_steps=48)
    prompt_ids, target_ids = tok(prompt)["input_ids"], tok(target, add_special_tokens=False)["input_ids"]
    base = [prompt_ids[0]] + [baseline_id(tok)] * (len(prompt_ids) - 1)  # BOS kept, every token absent
    diff = (plain_logprobs(model, prompt_ids, target_ids) - plain_logprobs(model, base, target_ids)).numpy()
    assert e.target_logprob == pytest.approx(float(plain_logprobs(model, prompt_ids, target_ids).sum()), abs=1e-3)
    for name in ("integrated_gradients", "shapley_sampling"):
        a = e.attributions[name]
        sums = [sum(row) for row in a.token_attr]
        assert len(sums) == len(target_ids) and len(a.seq_attr) == len(prompt_ids) - 1
        for t, (s, d, delta) in enumerate(zip(sums, diff, a.deltas)):
            assert abs(s - d) <= abs(delta) + 1e-4, (name, t)
            assert abs(delta) <= 0.01 + 0.05 * abs(d), (name, t, delta, d)  # and the delta is small
        assert sum(a.seq_attr) == pytest.approx(sum(sums), abs=1e-4)
    assert abs(sum(e.attributions["shapley_sampling"].deltas)) < 1e-4  # efficiency holds per permutation


@pytest.mark.parametrize("key", ["red", "blue", "green"])
def test_feature_ablation_puts_the_top_attribution_on_the_planted_token(planted_lm, key):
    model, tok = planted_lm
    e = attribute(model, tok, f"{key} dog tree mat", " " + KEYS[key], methods=["feature_ablation"])
    assert e.target_logprob > -0.5  # the model learned the dependency
    seq = e.attributions["feature_ablation"].seq_attr
    top = max(range(len(seq)), key=lambda i: seq[i])
    assert e.input_tokens[top].strip() == key, (e.input_tokens, seq)


def test_the_target_is_the_greedy_continuation_when_not_given(random_lm):
    from fmaudit.core.generate import generate

    model, tok = random_lm
    e = attribute(model, tok, "the red ball", methods=["feature_ablation"], max_new_tokens=5)
    assert e.target_generated and len(e.target_ids) >= 1
    assert e.target == generate(model, tok, ["the red ball"], max_new_tokens=5)[0]


def test_bad_inputs_are_input_errors(random_lm):
    model, tok = random_lm
    with pytest.raises(InputError, match="prompt is empty"):
        attribute(model, tok, "  ", " the cat")
    with pytest.raises(InputError, match="longer than the model's context of 64"):
        attribute(model, tok, "the cat", " the dog" * 70)
