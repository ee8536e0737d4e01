"""Tokenizer training and reload, and model sizing."""

from __future__ import annotations

import json

import pytest

from fmaudit.core.config import ModelSettings
from fmaudit.core.model import build_config, build_model
from fmaudit.core.sizing import model_size
from fmaudit.core.tokenizer import BOS, EOS, PAD, ROLES, train_tokenizer
from tests.conftest import run_cli

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Prix: 12,50 € — café naïve 日本語 🙂 tab\there",
         "  leading spaces and\nnew lines  "]


def test_tokenizer_round_trip_and_reload(lm_job, tmp_path):
    from transformers import AutoTokenizer

    assert run_cli("tokenizer", "train", "--data", lm_job["job"], "--vocab-size", "300", "--out", tmp_path / "tok") == 0
    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert len(tok) == 300
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (BOS, EOS, PAD)
    for special in (BOS, EOS, PAD, *ROLES):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1  # never split
    for text in TEXTS:  # byte-level: any text, including unseen scripts and emoji, round-trips exactly
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text
    # Merges were learnt from the corpus: its words take fewer tokens than bytes.
    sentence = lm_job["docs"][0]["text"]
    assert len(tok(sentence, add_special_tokens=False)["input_ids"]) < len(sentence.encode()) / 2
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == f"{BOS}<|user|>\nhi{EOS}\n<|assistant|>\n"


def test_tokenizer_training_is_deterministic_and_checks_vocab_size(lm_job, tmp_path):
    texts = [d["text"] for d in lm_job["docs"]]
    a, b = train_tokenizer(texts, 300), train_tokenizer(iter(texts), 300)
    assert a.get_vocab() == b.get_vocab()
    assert run_cli("tokenizer", "train", "--data", lm_job["job"], "--vocab-size", "100", "--out", tmp_path / "t") == 2
    assert run_cli("tokenizer", "train", "--data", tmp_path / "none", "--vocab-size", "300", "--out", tmp_path / "t") == 2


@pytest.mark.parametrize("preset", ["llama-tiny", "gpt2-tiny"])
def test_model_size_counts_the_parameters_of_the_built_model(preset):
    config = build_config(ModelSettings(preset=preset, overrides={"num_hidden_layers": 3}), 320, 64)
    model = build_model(config, seed=0)
    size = model_size(config, 64)
    assert size["parameters"] == sum(p.numel() for p in model.parameters())
    assert config.num_hidden_layers == 3
    assert size["compute_optimal_tokens"] == 20 * size["parameters"]
    a, b = build_model(config, seed=1), build_model(config, seed=1)
    assert all((p == q).all() for p, q in zip(a.parameters(), b.parameters()))


def test_model_size_cli(capsys):
    # GPT-2 small is the well-known 124,439,808 parameters (tied embeddings); FLOPs per token follow PaLM:
    # 6 x (85M in blocks + 38.6M tied head) + 12 x 12 layers x 768 x 1024.
    assert run_cli("model-size", "--preset", "gpt2-small", "--vocab-size", "50257", "--seq-len", "1024", "--json") == 0
    size = json.loads(capsys.readouterr().out)
    assert size["parameters"] == 124_439_808
    assert size["flops_per_token_train"] == pytest.approx(6 * (85e6 + 50257 * 768) + 12 * 12 * 768 * 1024, rel=0.01)
    assert run_cli("model-size", "--preset", "llama-1b") == 0
    assert "compute-optimal tokens" in capsys.readouterr().out
    assert run_cli("model-size", "--preset", "nope") == 2
    assert run_cli("model-size", "--preset", "llama-tiny", "--policy", "x.yaml") == 2
