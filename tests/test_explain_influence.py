"""Influence of training documents (kronfluence EK-FAC): a query that duplicates a training document ranks
it first, pre-filtered and low-rank scores agree with exhaustive exact ones, factors are cached by key,
and bad inputs exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("kronfluence")

from fmaudit.corpus import Document, write_jsonl  # noqa: E402
from fmaudit.errors import InputError  # noqa: E402
from fmaudit.explain.influence import InfluenceAnalysis, InfluenceSettings, tracked_modules  # noqa: E402
from fmaudit.explain.ranking import rank_documents, rank_training_documents  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

N_DOCS = 40
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(lm_job, tmp_path_factory):
    """llama-tiny trained 120 steps on 40 lm_job documents, saved as a checkpoint, with the data folder."""
    from fmaudit.core.tokenizer import load_tokenizer
    from fmaudit.testing.tiny_lm import save_tiny_lm, train_tiny_lm

    root = tmp_path_factory.mktemp("influence")
    docs = [Document(d["id"], " ".join(d["text"].split()[:24])) for d in lm_job["docs"][:N_DOCS]]
    tok = load_tokenizer(lm_job["tokenizer"])
    model = train_tiny_lm([d.text for d in docs], tok, steps=120, lr=5e-3)
    write_jsonl(root / "job" / "data" / "00000.jsonl", [{"id": d.id, "text": d.text} for d in docs])
    return {"model": model, "tok": tok, "docs": docs, "ckpt": save_tiny_lm(model, tok, root / "ckpt"),
            "data": root / "job", "cache": root / "cache", "root": root}


@pytest.fixture(scope="module")
def analysis(trained):
    return InfluenceAnalysis(trained["model"], trained["tok"], trained["docs"], cache_dir=trained["cache"]).fit()


def test_a_query_duplicating_a_training_document_ranks_it_first(analysis, trained):
    picks = [2, 17, 31]
    result = rank_documents(analysis, [trained["docs"][i].text for i in picks], top_k=3, candidates=10,
                            anonymize=False)
    assert result.candidates_scored <= 30 and 0 < result.coverage < 1
    for i, q in zip(picks, result.queries):
        assert q.candidates == 10
        assert q.most[0].doc_id == trained["docs"][i].id, [d.doc_id for d in q.most]
        assert q.most[0].rank == 1 and q.most[0].score > q.most[1].score
        assert q.least[0].score <= q.least[-1].score <= q.most[-1].score
        layers = q.most[0].per_layer
        assert set(layers) == {"layer 0", "layer 1"}
        assert sum(layers.values()) == pytest.approx(q.most[0].score, rel=1e-3)
        assert sum(t["score"] for t in q.most[0].top_tokens) != 0 and len(q.most[0].top_tokens) == 8


def test_prefiltered_scores_agree_with_exhaustive_scores(analysis, trained):
    from scipy.stats import spearmanr

    queries = ["the red ball sat near the river", ("the cat", " ran under the old tree")]
    pre = rank_documents(analysis, queries, top_k=5, candidates=12, anonymize=False)
    full = rank_documents(analysis, queries, top_k=5, prefilter="none", anonymize=False)
    assert full.candidates_scored == N_DOCS and full.coverage == 1.0 and full.prefilter == "exhaustive"
    for p, f in zip(pre.queries, full.queries):
        ids = list(p.scores)  # the pre-filter's candidates
        rho = spearmanr([p.scores[i] for i in ids], [f.scores[i] for i in ids]).statistic
        assert rho >= 0.8
        best = max(p.scores, key=p.scores.get)
        assert p.most[0].doc_id == best and f.scores[best] == pytest.approx(p.scores[best], rel=1e-4)


def test_low_rank_query_gradients_agree_with_exact_ones_on_the_top_candidates(trained, tmp_path):
    from scipy.stats import spearmanr

    queries = [trained["docs"][i].text for i in (3, 9)]
    exact = InfluenceAnalysis(trained["model"], trained["tok"], trained["docs"], cache_dir=trained["cache"]).fit()
    cheap = InfluenceAnalysis(trained["model"], trained["tok"], trained["docs"], cache_dir=trained["cache"],
                              settings=InfluenceSettings(query_rank=32)).fit()
    assert cheap.key_ == exact.key_ and cheap.cache_hit_  # the query rank is not part of the factors
    e, c = exact.score(queries)["all"], cheap.score(queries)["all"]
    for qi in range(len(queries)):
        top = np.argsort(-e[qi])[:10]
        assert spearmanr(e[qi, top], c[qi, top]).statistic >= 0.8


@pytest.mark.slow
def test_factors_are_cached_by_checkpoint_data_and_modules(trained, tmp_path):
    kwargs = dict(prefilter="none", cache_dir=tmp_path / "cache", anonymize=False)
    first = rank_training_documents(trained["ckpt"], trained["data"], ["the cat sat"], top_k=2, **kwargs)
    again = rank_training_documents(trained["ckpt"], trained["data"], ["the cat sat"], top_k=2, **kwargs)
    assert not first.factors_cached and again.factors_cached and again.factors_key == first.factors_key
    assert again.queries[0].scores == pytest.approx(first.queries[0].scores, rel=1e-5)
    attn = rank_training_documents(trained["ckpt"], trained["data"], ["the cat sat"], top_k=2,
                                   settings=InfluenceSettings(modules="attention"), **kwargs)
    assert attn.factors_key != first.factors_key and not attn.factors_cached
    assert all("self_attn" in m for m in attn.modules) and all(".mlp." in m for m in first.modules)
    fewer = tmp_path / "fewer"
    write_jsonl(fewer / "data" / "00000.jsonl", [{"id": d.id, "text": d.text} for d in trained["docs"][:30]])
    other = rank_training_documents(trained["ckpt"], fewer, ["the cat sat"], top_k=2, **kwargs)
    assert other.factors_key != first.factors_key and other.corpus_size == 30


def test_gpt2_conv1d_layers_are_refused_not_skipped(trained):
    from fmaudit.core.config import ModelSettings
    from fmaudit.core.model import build_config, build_model

    tok = trained["tok"]
    gpt2 = build_model(build_config(ModelSettings(preset="gpt2-tiny"), len(tok), 32))
    with pytest.raises(InputError, match="kronfluence supports only nn.Linear"):
        tracked_modules(gpt2, "mlp")


def test_influence_command_writes_the_report_and_bad_inputs_exit_2(trained, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli("influence", trained["ckpt"], "--data", trained["data"], "--query", trained["docs"][5].text,
                   "--query", "the dog ran", "--top", "3", "--candidates", "15", "--cache-dir", tmp_path / "c",
                   "--out", out)
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "influence.json").read_text())
    assert report["kind"] == "audit" and report["stage"] == "influence"
    inf = report["details"]["influence"]
    assert inf["queries"][0]["most"][0]["doc_id"] == trained["docs"][5].id
    assert report["metrics"]["candidates_scored"] <= 30 and report["metrics"]["corpus_documents"] == N_DOCS
    assert all((out / p).is_file() for p in report["plots"]) and report["plots"]
    printed = capsys.readouterr().out
    assert trained["docs"][5].id in printed and "coverage" in printed

    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    assert run_cli("influence", trained["ckpt"], "--data", empty, "--query", "x y", "--out", tmp_path / "o2") == 2
    assert "holds no .jsonl" in capsys.readouterr().err
    (empty / "data" / "00000.jsonl").write_text('{"id": "a", "text": ""}\n{"id": "b"}\n')  # no valid document
    assert run_cli("influence", trained["ckpt"], "--data", empty, "--query", "x y", "--out", tmp_path / "o2") == 2
    assert "no documents" in capsys.readouterr().err
    assert run_cli("influence", trained["ckpt"], "--data", trained["data"], "--query", " ",
                   "--out", tmp_path / "o3") == 2
    assert "query is empty" in capsys.readouterr().err
