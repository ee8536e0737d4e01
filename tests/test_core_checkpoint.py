"""Checkpoints from elsewhere: a foreign transformers folder loads for generation and perplexity; pickle-only,
truncated, non-causal and tokenizer-less folders are refused with exit 2."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from fmaudit.core.checkpoint import load_checkpoint
from fmaudit.core.evaluate import continuation_logprobs, perplexity, sequence_logprobs
from fmaudit.core.generate import generate
from fmaudit.errors import InputError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def foreign(lm_job, tmp_path_factory) -> Path:
    """A tiny GPT-2 saved with plain ``save_pretrained`` (safetensors) and the test tokenizer: not built by
    fmaudit's trainer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(lm_job["tokenizer"])
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2,
                                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    path = tmp_path_factory.mktemp("foreign") / "gpt2"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def copy_without(src: Path, dst: Path, *names: str) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*names))
    return dst


def test_foreign_checkpoint_generates_and_scores(foreign):
    model, tok = load_checkpoint(foreign)
    greedy = generate(model, tok, ["the cat", "a dog ran"], max_new_tokens=8)
    assert greedy == generate(model, tok, ["the cat", "a dog ran"], max_new_tokens=8)
    sampled = [generate(model, tok, ["the cat"], max_new_tokens=12, sample=True, seed=s)[0] for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]

    text = "the dog sat under a big tree"
    (row,) = sequence_logprobs(model, tok, [text])
    ids = tok(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()  # mean over the n - 1 predicted tokens
    assert row["tokens"] == ids.shape[1] - 1
    assert row["logprob"] == pytest.approx(-loss * row["tokens"], rel=1e-4)
    assert perplexity(model, tok, [text]) == pytest.approx(math.exp(loss), rel=1e-4)
    # Batching with padding does not change a text's score.
    rows = sequence_logprobs(model, tok, [text, "the cat", text + " near the old river house"], batch_size=3)
    assert rows[0]["logprob"] == pytest.approx(row["logprob"], rel=1e-4)
    # log p(prompt + continuation) = log p(prompt) + log p(continuation | prompt)
    (cont,) = continuation_logprobs(model, tok, ["the dog sat"], [" under a big tree"])
    (prefix,) = sequence_logprobs(model, tok, ["the dog sat"])
    assert prefix["logprob"] + cont["logprob"] == pytest.approx(row["logprob"], rel=1e-4)


def test_generate_cli_on_foreign_checkpoint(foreign, capsys):
    assert run_cli("generate", foreign, "--prompt", "the cat", "--max-new-tokens", "5", "--perplexity", "--json") == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["prompt"] == "the cat" and out["perplexity"] > 1
    for flag, value in (("--max-new-tokens", "0"), ("--temperature", "0"), ("--top-p", "1.5")):
        assert run_cli("generate", foreign, "--prompt", "the cat", "--sample", flag, value) == 2  # not 3
        assert flag in capsys.readouterr().err


def test_pickle_only_checkpoint_is_refused(foreign, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    path = copy_without(foreign, tmp_path / "pickled", "model.safetensors")
    model = AutoModelForCausalLM.from_pretrained(foreign)
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    assert run_cli("generate", path, "--prompt", "the cat") == 2
    assert "pickle" in capsys.readouterr().err
    assert run_cli("generate", path, "--prompt", "the cat", "--max-new-tokens", "3", "--allow-pickle") == 0


def test_truncated_safetensors_is_refused(foreign, tmp_path, capsys):
    path = copy_without(foreign, tmp_path / "truncated")
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert run_cli("generate", path, "--prompt", "the cat") == 2
    assert "corrupt safetensors" in capsys.readouterr().err


def test_not_a_causal_lm_is_refused(foreign, tmp_path):
    from transformers import BertConfig, BertModel

    bert = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(bert)
    with pytest.raises(InputError, match="not a causal language model"):
        load_checkpoint(bert)
    with pytest.raises(InputError, match="no config.json"):
        load_checkpoint(tmp_path)
    remote = copy_without(foreign, tmp_path / "remote")
    cfg = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModelForCausalLM": "x.Model"}}))
    with pytest.raises(InputError, match="trust-remote-code"):
        load_checkpoint(remote)


def test_missing_tokenizer_is_refused(foreign, tmp_path, capsys):
    path = copy_without(foreign, tmp_path / "notok", "tokenizer*", "chat_template*", "special_tokens*")
    assert run_cli("generate", path, "--prompt", "the cat") == 2
    assert "no tokenizer" in capsys.readouterr().err


def test_a_config_too_big_for_its_weights_or_memory_is_refused_before_building(foreign, tmp_path, monkeypatch):
    """num_hidden_layers: 1000000 is sized from the config (meta device), not built; so is a model larger than
    the free memory."""
    import time


    huge = copy_without(foreign, tmp_path / "huge")
    config = json.loads((huge / "config.json").read_text())
    (huge / "config.json").write_text(json.dumps({**config, "n_layer": 1_000_000}))
    t0 = time.monotonic()
    with pytest.raises(InputError, match="1,000,0|parameters"):
        load_checkpoint(huge)
    assert time.monotonic() - t0 < 60  # refused from the config; building it would take hours
    assert run_cli("generate", huge, "--prompt", "the cat") == 2
    monkeypatch.setattr("fmaudit.core.sizing.available_memory", lambda device=None: 1000)
    with pytest.raises(InputError, match="more than the memory free"):
        load_checkpoint(foreign)


def test_an_index_naming_shards_outside_the_folder_is_refused(foreign, tmp_path):
    sharded = copy_without(foreign, tmp_path / "sharded", "model.safetensors")
    shutil.copy(foreign / "model.safetensors", tmp_path / "outside.safetensors")
    from safetensors import safe_open

    with safe_open(str(foreign / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    (sharded / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: "../outside.safetensors" for k in keys}}))
    with pytest.raises(InputError, match="outside the checkpoint folder"):
        load_checkpoint(sharded)
    assert run_cli("generate", sharded, "--prompt", "the cat") == 2
