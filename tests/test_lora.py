"""LoRA fine-tuning on the shared loop (fmaudit.tune.lora): only the adapters train, the base weights stay
bit-identical, the merged checkpoint is a plain transformers folder equal to W + (alpha / r) B A, and a LoRA run
resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from fmaudit.core.config import TrainSettings  # noqa: E402
from fmaudit.core.sources import PairSource  # noqa: E402
from fmaudit.core.train import fine_tune  # noqa: E402
from fmaudit.tune.lora import LoraSettings, adapter_wrapper, merge_adapters  # noqa: E402

PAIRS = [(f"what does the {a} do near the {b}", f"the {a} sat on the {b}") for a in ("cat", "dog", "tree")
         for b in ("mat", "park", "river", "house")]
TARGETS = ["q_proj", "v_proj", "lm_head"]
LORA = LoraSettings(r=4, alpha=8, target_modules=TARGETS)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A llama-tiny briefly trained on the pairs' words (untied embeddings, so lm_head is its own matrix)."""
    from fmaudit.core.tokenizer import train_tokenizer
    from fmaudit.testing.tiny_lm import save_tiny_lm, train_tiny_lm

    torch.set_num_threads(1)
    texts = [f"{p} {r}" for p, r in PAIRS] * 4
    tok = train_tokenizer(texts, 300)
    return save_tiny_lm(train_tiny_lm(texts, tok, steps=10, context=64), tok, tmp_path_factory.mktemp("lora") / "base")


def settings(base: Path) -> TrainSettings:
    return TrainSettings(init_from=base, seq_len=48, micro_batch=4, lr=1e-2, warmup_steps=1, max_steps=6,
                         eval_interval=3, eval_batches=1, log_interval=1, checkpoint_interval=3, cpu_threads=1)


def tune(base: Path, out: Path, record=None, stop_after=None):
    def source(tok, model):
        return PairSource(tok, PAIRS[:10], PAIRS[10:], 48)
    return fine_tune(settings(base), out, source, identity={"lora": LORA.model_dump(mode="json")},
                     stop_after=stop_after, progress=False, wrap_model=adapter_wrapper(LORA, 0, record))


def state(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_only_adapters_train_and_the_merge_is_a_plain_checkpoint(base, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from fmaudit.core.checkpoint import load_checkpoint

    record: dict = {}
    result = tune(base, tmp_path / "run", record)
    assert result.completed and result.final_val_loss < result.initial_val_loss
    files = {f.name for f in result.model_dir.iterdir()}
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    adapters = state(result.model_dir / "adapter_model.safetensors")
    assert adapters and all("lora_" in k for k in adapters)
    assert any(float(v.abs().max()) > 0 for k, v in adapters.items() if "lora_B" in k)  # B starts at 0

    original = state(base / "model.safetensors")
    lora_base, _ = load_checkpoint(base)
    peft_model = PeftModel.from_pretrained(lora_base, str(result.model_dir))
    for name, p in peft_model.named_parameters():  # every base weight bit-identical before the merge
        if "lora_" not in name:
            plain = name.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(p.detach(), original[plain]), name
    linear = {n: m for n, m in lora_base.named_modules() if n.split(".")[-1] in TARGETS and hasattr(m, "in_features")}
    assert record["trainable_parameters"] == sum(LORA.r * (m.in_features + m.out_features) for m in linear.values())
    assert record["r"] == 4 and record["total_parameters"] > record["trainable_parameters"]

    merged_dir = merge_adapters(base, result.model_dir, tmp_path / "merged")
    merged, info = AutoModelForCausalLM.from_pretrained(str(merged_dir), local_files_only=True,
                                                        output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys"))
    weights = merged.state_dict()
    assert set(weights) == set(original) and not any("lora" in k for k in weights)
    changed = 0
    for name, w in original.items():
        module = name.removesuffix(".weight")
        if module.split(".")[-1] in TARGETS:
            a = adapters[f"base_model.model.{module}.lora_A.weight"]
            b = adapters[f"base_model.model.{module}.lora_B.weight"]
            torch.testing.assert_close(weights[name], w + (LORA.alpha / LORA.r) * b @ a, rtol=0, atol=1e-5)
            changed += not torch.equal(weights[name], w)
        else:
            assert torch.equal(weights[name], w), name
    assert changed == len(linear)
    load_checkpoint(merged_dir)  # and fmaudit's safe loader reads it, tokenizer with chat template included
    assert (merged_dir / "chat_template.jinja").exists()


def test_a_lora_run_resumes_exactly(base, tmp_path):
    whole = tune(base, tmp_path / "whole")
    tune(base, tmp_path / "part", stop_after=4)
    done = tune(base, tmp_path / "part")

    def losses(run):
        return [r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                if r["split"] == "train"]
    assert losses(tmp_path / "part") == pytest.approx(losses(tmp_path / "whole"), abs=1e-6)
    a, b = state(whole.model_dir / "adapter_model.safetensors"), state(done.model_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_dpo_with_adapters_starts_at_the_reference(base, tmp_path):
    """The reference log-probabilities come from the base before adapters exist, and fresh adapters (B = 0)
    leave the outputs unchanged: the DPO loss starts at log 2 exactly as in a full fine-tune, then falls."""
    import math

    from fmaudit.core.sources import PreferenceSource

    triples = [(p, r, "the river ran under the big red house") for p, r in PAIRS]

    def source(tok, model):
        s = PreferenceSource(tok, triples[:10], triples[10:], 48, beta=0.5)
        s.prepare(model)
        return s
    result = fine_tune(settings(base), tmp_path / "dpo", source, progress=False,
                       wrap_model=adapter_wrapper(LORA, 0))
    assert result.initial_val_loss == pytest.approx(math.log(2), abs=1e-4)
    assert result.final_val_loss < result.initial_val_loss
