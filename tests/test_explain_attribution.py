"""Token attribution (captum): captum scores what a plain forward pass scores, attributions are complete
within the reported convergence delta, and feature ablation finds a planted dependency."""

from __future__ import annotations

import json
import random

import pytest
import torch

pytest.importorskip("captum")
pytestmark = pytest.mark.usefixtures("one_thread")

from fmaudit.errors import InputError  # noqa: E402
from fmaudit.explain.attribution import attribute, baseline_id, captum_logprobs  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

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


@pytest.fixture(scope="module")
def gendered_ckpt(tmp_path_factory):
    """A llama-tiny trained so that the name and pronoun decide the occupation, saved as a checkpoint."""
    from fmaudit.core.tokenizer import train_tokenizer
    from fmaudit.testing.tiny_lm import save_tiny_lm, train_tiny_lm

    rng = random.Random(1)
    docs = []
    for _ in range(200):
        he = rng.random() < 0.5
        docs.append(f"{'John' if he else 'Kimberly'} said {'he' if he else 'she'} is a {'doctor' if he else 'nurse'}")
    tok = train_tokenizer(docs, 320)
    model = train_tiny_lm(docs, tok, steps=100, lr=5e-3)
    return save_tiny_lm(model, tok, tmp_path_factory.mktemp("gendered") / "ckpt"), model, tok


def test_counterfactual_swaps_explain_the_change_of_the_target_probability(gendered_ckpt):
    from fmaudit.explain.counterfactual import counterfactual_attribution

    _, model, tok = gendered_ckpt
    r = counterfactual_attribution(model, tok, "Kimberly said she is a", " nurse", extra_pairs={"doctor": "nurse"})
    assert r.counterfactual_prompt.endswith("said he is a") and r.counterfactual_target == " doctor"
    assert [s["original"] for s in r.segments] == ["Kimberly", "she"]
    assert r.logprob > -0.5 and r.logprob_change > 1.0  # the swap makes " nurse" much less likely
    assert r.contrastive_logprob is not None and r.contrastive_logprob < r.logprob
    ids = tok("Kimberly said she is a")["input_ids"]
    cf = tok(r.counterfactual_prompt)["input_ids"]
    target = tok(" nurse", add_special_tokens=False)["input_ids"]
    change = float((plain_logprobs(model, ids, target) - plain_logprobs(model, cf, target)).sum())
    assert r.logprob_change == pytest.approx(change, abs=1e-4)
    assert sum(s["attribution"] for s in r.segments) == pytest.approx(change, abs=1e-4)  # exact Shapley: efficiency
    assert abs(r.delta) < 1e-4


def test_explain_command_writes_the_report_and_anonymizes(gendered_ckpt, tmp_path, capsys):
    ckpt = gendered_ckpt[0]
    out = tmp_path / "out"
    code = run_cli("explain", ckpt, "--prompt", "John said he is a", "--target", " doctor", "--counterfactual",
                   "--swap", "doctor=nurse", "--shapley-samples", "4", "--ig-steps", "32", "--out", out)
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "explain.json").read_text())
    assert report["kind"] == "audit" and report["stage"] == "explain"
    row = report["details"]["attribution"][0]
    assert set(row["attributions"]) == {"feature_ablation", "shapley_sampling", "integrated_gradients"}
    assert len(row["attributions"]["integrated_gradients"]["token_attr"][0]) == len(row["input_tokens"])
    assert {c["name"] for c in report["checks"]} == {"shapley_sampling_completeness",
                                                     "integrated_gradients_completeness"}
    assert len(report["plots"]) == 4 and all((out / p).is_file() for p in report["plots"])
    text = (out / "explain.json").read_text()
    # presidio finds "John" here: the name is scrubbed, and so is its swap (the pair lists would reveal it)
    assert "John" not in text and "Kimberly" not in text
    assert report["details"]["counterfactual"][0]["segments"][1] == {
        "original": "he", "swap": "she", "occurrences": 1,
        "attribution": report["details"]["counterfactual"][0]["segments"][1]["attribution"]}
    assert report["protocol"]["prompts"] == 1 and len(report["protocol"]["prompts_sha256"]) == 64
    assert "counterfactual" in capsys.readouterr().out


def test_explain_command_bad_inputs_exit_2(gendered_ckpt, tmp_path, capsys):
    ckpt = gendered_ckpt[0]
    assert run_cli("explain", ckpt, "--prompt", "", "--out", tmp_path / "a") == 2
    assert "prompt is empty" in capsys.readouterr().err
    assert run_cli("explain", ckpt, "--prompt", "Kimberly said", "--target", " nurse" * 80, "--out", tmp_path / "b") == 2
    assert "longer than the model's context" in capsys.readouterr().err
    assert run_cli("explain", ckpt, "--prompt", "a", "--methods", "saliency", "--out", tmp_path / "c") == 2
    assert "unknown attribution method 'saliency'" in capsys.readouterr().err
    assert run_cli("explain", tmp_path / "nope", "--prompt", "a", "--out", tmp_path / "d") == 2
