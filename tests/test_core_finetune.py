"""The shared training loop beyond pre-training: exact resume with dropout on, the response-only loss mask of
prompt/response pairs, and fine-tuning a checkpoint (init_from) on pairs and on preference triples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fmaudit.core.chat import IGNORE, encode_pair, ensure_chat_template, prompt_ids
from fmaudit.core.checkpoint import checkpoint_sha256, load_checkpoint
from fmaudit.core.config import TrainSettings
from fmaudit.core.sources import PairSource, PreferenceSource
from fmaudit.core.train import fine_tune, train

PAIRS = [(f"what does the {a} do near the {b}", f"the {a} sat on the {b}") for a in ("cat", "dog", "tree")
         for b in ("mat", "park", "river", "house")]


def tiny(**overrides) -> TrainSettings:
    base = dict(model={"preset": "gpt2-tiny"}, seq_len=32, micro_batch=4, lr=5e-3, warmup_steps=2, max_steps=8,
                holdout_fraction=0.1, eval_interval=4, eval_batches=2, log_interval=1, checkpoint_interval=4,
                cpu_threads=1)
    return TrainSettings(**{**base, **overrides})


def rows(run: Path, split: str) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r["split"] == split]


@pytest.fixture(scope="module")
def base_model(lm_job, tmp_path_factory) -> Path:
    """A briefly pre-trained gpt2-tiny: the checkpoint the fine-tuning tests start from."""
    out = tmp_path_factory.mktemp("base")
    return train(tiny(max_steps=4, seq_len=64), lm_job["job"], lm_job["tokenizer"], out, progress=False).model_dir


def test_resume_with_dropout_reproduces_the_loss_curve(lm_job, tmp_path):
    drop = {"preset": "gpt2-tiny", "overrides": {"resid_pdrop": 0.2, "embd_pdrop": 0.2, "attn_pdrop": 0.2}}
    settings = tiny(model=drop)
    whole = train(settings, lm_job["job"], lm_job["tokenizer"], tmp_path / "whole", progress=False)
    part = train(settings, lm_job["job"], lm_job["tokenizer"], tmp_path / "resumed", stop_after=3, progress=False)
    assert not part.completed
    done = train(settings, lm_job["job"], lm_job["tokenizer"], tmp_path / "resumed", progress=False)
    assert done.completed
    a, b = rows(tmp_path / "whole", "train"), rows(tmp_path / "resumed", "train")
    assert [s for s, _ in a] == [s for s, _ in b]
    np.testing.assert_allclose([x for _, x in b], [x for _, x in a], rtol=0, atol=1e-6)
    # Dropout is really on: without it the same run gives another curve from the first step on.
    plain = train(tiny(), lm_job["job"], lm_job["tokenizer"], tmp_path / "plain", progress=False)
    assert plain.completed and abs(rows(tmp_path / "plain", "train")[0][1] - a[0][1]) > 1e-4


def test_loss_mask_covers_only_response_tokens(lm_job):
    from fmaudit.core.tokenizer import load_tokenizer

    tok = load_tokenizer(lm_job["tokenizer"])
    assert not ensure_chat_template(tok)  # fmaudit's tokenizers ship a chat template
    bare = load_tokenizer(lm_job["tokenizer"])
    bare.chat_template = None
    assert ensure_chat_template(bare) and "Assistant:" in bare.decode(prompt_ids(bare, "hi"))
    for t in (tok, bare):
        enc = encode_pair(t, PAIRS[0][0], PAIRS[0][1], max_len=64)
        n = len(prompt_ids(t, PAIRS[0][0]))
        assert enc.labels[:n] == [IGNORE] * n and t.decode(enc.ids[n:], skip_special_tokens=True).strip() \
            == PAIRS[0][1]
    prompt, response = PAIRS[0]
    enc = encode_pair(tok, prompt, response, max_len=64)
    p = prompt_ids(tok, prompt)
    assert enc.ids[:len(p)] == p and enc.labels[:len(p)] == [IGNORE] * len(p)
    assert enc.labels[len(p):] == enc.ids[len(p):] and enc.ids[-1] == tok.eos_token_id
    assert tok.decode(enc.ids[len(p):], skip_special_tokens=True).strip() == response
    source = PairSource(tok, PAIRS[:3], PAIRS[3:4], max_len=64)
    batch = source.batch([0, 1, 2])
    n_real = batch["attention_mask"].sum(1)
    for i in range(3):
        labelled = (batch["labels"][i] != IGNORE).nonzero().flatten()
        expect = len(source.train[i].ids) - len(prompt_ids(tok, PAIRS[i][0]))
        assert len(labelled) == expect and int(labelled.max()) == int(n_real[i]) - 1  # no loss on padding
    assert batch["tokens"] == int(n_real.sum())


def test_fine_tune_pairs_from_a_checkpoint_resumes_exactly(base_model, tmp_path):
    settings = tiny(init_from=base_model, max_steps=6, eval_interval=3, checkpoint_interval=3, seq_len=64)

    def source(tok, model):
        return PairSource(tok, PAIRS[:10], PAIRS[10:], settings.seq_len)

    whole = fine_tune(settings, tmp_path / "whole", source, identity={"pairs": 12}, progress=False)
    assert whole.completed and whole.final_val_loss < whole.initial_val_loss
    fine_tune(settings, tmp_path / "part", source, identity={"pairs": 12}, stop_after=4, progress=False)
    done = fine_tune(settings, tmp_path / "part", source, identity={"pairs": 12}, progress=False)
    np.testing.assert_allclose([x for _, x in rows(tmp_path / "part", "train")],
                               [x for _, x in rows(tmp_path / "whole", "train")], rtol=0, atol=1e-6)
    assert done.final_val_loss == pytest.approx(whole.final_val_loss, abs=1e-6)
    model, _ = load_checkpoint(done.model_dir)
    base, _ = load_checkpoint(base_model)
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values()))
    assert len(checkpoint_sha256(base_model)) == 64 and checkpoint_sha256(base_model) != checkpoint_sha256(done.model_dir)
    from fmaudit.errors import UsageError

    with pytest.raises(UsageError):  # other data in the same folder: refused, not silently mixed
        fine_tune(settings, tmp_path / "part", source, identity={"pairs": 13}, progress=False)


def test_dpo_raises_the_chosen_margin(base_model, tmp_path):
    triples = [(p, r, "the river ran under the big red house") for p, r in PAIRS]
    settings = tiny(init_from=base_model, max_steps=8, eval_interval=8, seq_len=64, lr=1e-2)
    made = {}

    def source(tok, model):
        made["s"] = PreferenceSource(tok, triples[:10], triples[10:], settings.seq_len, beta=0.5)
        made["s"].prepare(model)
        return made["s"]

    result = fine_tune(settings, tmp_path / "dpo", source, progress=False)
    # The DPO loss starts at log(2) (policy = reference) and falls as chosen answers gain over rejected ones.
    assert result.initial_val_loss == pytest.approx(np.log(2), abs=1e-4)
    assert result.final_val_loss < result.initial_val_loss
