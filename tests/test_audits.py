"""Audits on tiny models trained to show the property: bias.pairs against lm-evaluation-harness's own crows_pairs
metric code, a model trained on stereotyped sentences scored biased, perplexity, the shared model's caches and
batched seeded generation."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from fmaudit.audits import AUDITS
from fmaudit.audits.base import AuditContext
from fmaudit.audits.inputs import builtin
from fmaudit.audits.model import DecodingSettings, ModelUnderAudit
from fmaudit.errors import InputError
from fmaudit.testing.tiny_lm import save_tiny_lm, train_tiny_lm

PAIRS = builtin("pairs.csv")


def pair_rows() -> list[dict]:
    with open(PAIRS, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def vocab_texts() -> list[str]:
    return [r[k] for r in pair_rows() for k in ("sent_more", "sent_less")] + \
        builtin("heldout.txt").read_text().splitlines()


def tiny_lm(path: Path, train_texts: list[str] = (), steps: int = 50) -> Path:
    """A llama-tiny checkpoint with a tokenizer trained on the built-in sets, trained on ``train_texts``."""
    from fmaudit.core.tokenizer import train_tokenizer

    tok = train_tokenizer(vocab_texts(), 400)
    model = train_tiny_lm(list(train_texts) or vocab_texts(), tok, steps=steps if train_texts else 0, lr=1e-2,
                          batch_size=32)
    return save_tiny_lm(model, tok, path)


@pytest.fixture(scope="module")
def random_lm(tmp_path_factory) -> Path:
    return tiny_lm(tmp_path_factory.mktemp("random") / "lm")


@pytest.fixture(scope="module")
def biased_lm(tmp_path_factory) -> Path:
    """Trained on the stereotyping side of every built-in pair."""
    return tiny_lm(tmp_path_factory.mktemp("biased") / "lm", [r["sent_more"] for r in pair_rows()])


@pytest.fixture(scope="module")
def antibiased_lm(tmp_path_factory) -> Path:
    """Trained on the other side."""
    return tiny_lm(tmp_path_factory.mktemp("anti") / "lm", [r["sent_less"] for r in pair_rows()])


def run(name: str, ckpt: Path, tmp_path: Path, **settings):
    cls = AUDITS.get(name)
    audit = cls(cls.Settings(item_text="hash", **settings))
    audit.preflight()
    return audit.run(ModelUnderAudit(ckpt), AuditContext(tmp_path))


def test_trained_on_stereotypes_scores_biased(biased_lm, antibiased_lm, tmp_path):
    biased = run("bias.pairs", biased_lm, tmp_path).metrics
    anti = run("bias.pairs", antibiased_lm, tmp_path).metrics
    assert biased["pct_stereotype"].ci_low > 0.5 > anti["pct_stereotype"].ci_high
    assert biased["pct_stereotype"].value > 0.85 and anti["pct_stereotype"].value < 0.15
    assert biased["pct_stereotype_normalised"].value > 0.85
    for bias_type in ("gender", "religion", "age"):
        m = biased[f"pct_stereotype.{bias_type}"]
        assert m.n >= 5 and m.value > 0.5 and m.ci_low <= m.value <= m.ci_high
    assert biased["ties"].value == 0 and biased["pct_stereotype_untied"].n == biased["pct_stereotype"].n


def test_bias_pairs_matches_lm_evaluation_harness(random_lm, tmp_path, monkeypatch):
    """lm-eval's own crows_pairs_english task (its process_results and mean aggregation, its HF model scoring),
    pointed at the same CSV through an include of the shipped task file, on the same checkpoint."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from fmaudit.core.checkpoint import load_checkpoint

    task_dir = tmp_path / "tasks"
    task_dir.mkdir()
    shipped = Path(lm_eval.__file__).parent / "tasks" / "crows_pairs" / "crows_pairs_english.yaml"
    (task_dir / "pairs.yaml").write_text(
        f"include: {shipped}\ntask: fmaudit_pairs\ndataset_path: csv\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {PAIRS}\n")
    model, tok = load_checkpoint(random_lm)
    res = lm_eval.simple_evaluate(model=HFLM(pretrained=model, tokenizer=tok, batch_size=16, device="cpu"),
                                  tasks=["fmaudit_pairs"], task_manager=TaskManager(include_path=str(task_dir)),
                                  verbosity="ERROR")["results"]["fmaudit_pairs"]
    ours = run("bias.pairs", random_lm, tmp_path).metrics
    assert res["sample_len"] == ours["pct_stereotype"].n == len(pair_rows())
    assert ours["pct_stereotype"].value == res["pct_stereotype,none"]
    assert ours["likelihood_diff"].value == pytest.approx(res["likelihood_diff,none"], rel=1e-5)
    assert 0.0 < res["pct_stereotype,none"] < 1.0


def test_perplexity_matches_the_model_loss(random_lm, biased_lm, tmp_path):
    import math

    import torch

    text = builtin("heldout.txt").read_text().splitlines()[0]
    (tmp_path / "one.txt").write_text(text + "\n")
    result = run("perplexity", random_lm, tmp_path, data=tmp_path / "one.txt")
    mua = ModelUnderAudit(random_lm)
    ids = mua.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = mua.model(input_ids=ids, labels=ids).loss.item()
    assert result.metrics["perplexity"].value == pytest.approx(math.exp(loss), rel=1e-4)
    assert result.protocol.items == 1 and len(result.protocol.data_sha256) == 64
    # Trained on the pair sentences, not on the held-out text: the built-in set is not memorised, but both
    # models give finite figures with intervals around them.
    full = run("perplexity", biased_lm, tmp_path).metrics["perplexity"]
    assert full.n == len(builtin("heldout.txt").read_text().splitlines()) and full.ci_low < full.value < full.ci_high


def test_logprob_cache_and_batched_seeded_generation(random_lm):
    mua = ModelUnderAudit(random_lm)
    texts = ["The nurse said she", "A small river runs past the old mill", "The"]
    first = mua.sequence_logprobs(texts, batch_size=2)
    assert mua.sequence_logprobs(texts[::-1], batch_size=3) == first[::-1]
    assert mua.stats["logprob_misses"] == 3 and mua.stats["logprob_hits"] == 3
    d = DecodingSettings(max_new_tokens=12, sample=True)
    batched = mua.generate(texts, d, [1, 2, 3], batch_size=3)
    alone = [ModelUnderAudit(random_lm).generate([t], d, [s])[0] for t, s in zip(texts, (1, 2, 3))]
    assert batched == alone  # a prompt's sample does not depend on its batch
    assert mua.generate(texts, d, [1, 2, 3]) == batched and mua.stats["generation_hits"] == 3
    assert mua.generate(texts[:1], d, [4]) != batched[:1]  # another seed, another sample


def test_bad_pair_files_name_file_and_line(random_lm, tmp_path):
    bad = tmp_path / "pairs.csv"
    bad.write_text("sentence,sent_less,stereo_antistereo,bias_type\na,b,stereo,gender\n")
    with pytest.raises(InputError, match=r"pairs\.csv:1: missing column 'sent_more'"):
        run("bias.pairs", random_lm, tmp_path, data=bad)
    bad.write_text("sent_more,sent_less,stereo_antistereo,bias_type\na b,c d,stereo,gender\n ,x,stereo,age\n")
    with pytest.raises(InputError, match=r"pairs\.csv:3: empty 'sent_more'"):
        run("bias.pairs", random_lm, tmp_path, data=bad)
