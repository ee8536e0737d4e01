"""The toxicity stage: detoxify end to end with a tiny checkpoint built here, safe loading, sentence mode,
windows, actions, the cascade, and the identity-term removal-rate check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fmaudit.corpus import Document
from fmaudit.errors import InputError
from fmaudit.policy import load_policy
from fmaudit.stages.toxicity import Toxicity, ToxicitySettings, remove_spans, sentence_spans
from fmaudit.stats import StageStats
from tests.conftest import run_cli, write_policy

TOXIC = ["You are a stupid idiot.", "Shut up, you pathetic moron.", "What a worthless loser you are.",
         "Go to hell, you ugly creep.", "You idiot, nobody wants your garbage.", "Get lost, stupid troll."]
CLEAN = ["The weather was mild and sunny today.", "We planted tomatoes in the garden.",
         "The library opens at nine on weekdays.", "She baked bread for the neighbours.",
         "The train to the coast leaves hourly.", "Our team finished the bridge design.",
         "The museum shows paintings from the coast.", "Children played football in the park."]
MAX_LEN = 48  # tiny model: texts longer than this many tokens are scored in windows


def _train(model, tokenizer) -> None:
    """A few steps of training, so the tiny model scores insults high and plain sentences low."""
    pairs = [(f"{c} {t}", 1.0) for c, t in zip(CLEAN, TOXIC)] + [(f"{t} {c}", 1.0) for c, t in zip(CLEAN[2:], TOXIC)]
    pairs += [(f"{a} {b}", 0.0) for a, b in zip(CLEAN, CLEAN[1:] + CLEAN[:1])]
    texts = TOXIC + CLEAN + [p[0] for p in pairs]
    y = torch.tensor([[1.0] * 6] * len(TOXIC) + [[0.0] * 6] * len(CLEAN) + [[p[1]] * 6 for p in pairs])
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**enc).logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="module")
def tiny_detoxify(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, huggingface_config_path) of a tiny detoxify-format BERT trained on the fly."""
    from fmaudit.testing.detox_build import build_bert_checkpoint

    return build_bert_checkpoint(tmp_path_factory.mktemp("tiny_detox"), (TOXIC + CLEAN) * 5, vocab_size=200,
                                 init=_train, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=MAX_LEN)


def _scorer(ckpt: Path, hf: Path, **extra) -> dict:
    return {"name": "detoxify", "checkpoint": str(ckpt), "huggingface_config_path": str(hf), **extra}


def _stage(**settings) -> Toxicity:
    stage = Toxicity(ToxicitySettings.model_validate(settings))
    stage.setup()
    return stage


def _corpus(tmp_path: Path, docs: list[dict]) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "part.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs))
    return d


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.read_text().splitlines()]


def test_detoxify_end_to_end_matches_detoxify(tmp_path, tiny_detoxify):
    ckpt, hf = tiny_detoxify
    docs = [{"id": f"t{i}", "text": f"{CLEAN[i]} {TOXIC[i]}"} for i in range(4)] + \
           [{"id": f"c{i}", "text": f"{CLEAN[i]} {CLEAN[i + 1]}"} for i in range(6)]
    truth = tmp_path / "truth.jsonl"
    truth.write_text("".join(json.dumps({"kind": "toxic", "id": f"t{i}"}) + "\n" for i in range(4)))
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "toxicity", "scorer": _scorer(ckpt, hf),
                                                  "thresholds": {"toxicity": 0.5, "insult": 0.5},
                                                  "max_identity_removal_ratio": None,
                                                  "min_precision": 0.9, "min_recall": 0.9}])
    out = tmp_path / "out"
    assert run_cli("filter", _corpus(tmp_path, docs), "--policy", policy, "--out", out, "--workers", "1",
                   "--truth", truth, "--no-progress") == 0  # min_precision/recall checks pass
    assert {r["id"] for r in _rows(out / "dropped")} == {f"t{i}" for i in range(4)}
    report = json.loads((out / "reports" / "toxicity.json").read_text())
    m = report["metrics"]
    assert m["scorer"] == "detoxify" and m["precision"] == 1.0 and m["recall"] == 1.0
    assert {c["name"] for c in report["checks"] if c["passed"]} >= {"precision", "recall"}
    assert report["details"]["by_label"]["drop"] == {"toxicity": 4} or sum(report["details"]["by_label"]["drop"].values()) == 4
    table = report["details"]["threshold_sensitivity"]["table"]["toxicity"]
    assert table["0.1"] >= table["0.5"] >= 4 and sum(report["details"]["score_histograms"]["insult"]["counts"]) == 10
    assert report["plots"] == ["toxicity_scores.png"] and (out / "reports" / "toxicity_scores.png").stat().st_size > 0
    # the stage's scores are detoxify's own (batched, padded, sorted: same numbers)
    from detoxify import Detoxify

    reference = Detoxify(checkpoint=str(ckpt), huggingface_config_path=str(hf)).predict([d["text"] for d in docs])
    side = {r["id"]: r["scores"] for r in _rows(out / "toxicity_scores")}
    for k, d in enumerate(docs):
        assert side[d["id"]]["toxicity"] == pytest.approx(reference["toxicity"][k], abs=1e-4)


def test_pickle_with_code_is_refused_unless_trusted(tmp_path, tiny_detoxify):
    ckpt, hf = tiny_detoxify
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.ckpt"
    loaded = torch.load(ckpt, weights_only=True)
    loaded["config"]["extra"] = Payload()
    torch.save(loaded, evil)
    with pytest.raises(InputError, match="refused.*trusted: true"):
        _stage(scorer=_scorer(evil, hf))
    assert not marker.exists()
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "toxicity", "scorer": _scorer(evil, hf)}])
    corpus = _corpus(tmp_path, [{"id": "a", "text": CLEAN[0]}])
    assert run_cli("filter", corpus, "--policy", policy, "--out", tmp_path / "o", "--workers", "2",
                   "--no-progress") == 2  # refused by the driver's preflight, before any worker starts
    assert not marker.exists() and not (tmp_path / "o").exists()
    _stage(scorer=_scorer(evil, hf, trusted=True))
    assert marker.exists()  # trusted: full unpickling, which is exactly why it is opt-in


def test_missing_weights_stop_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "toxicity", "scorer": {"name": "detoxify"}}])
    corpus = _corpus(tmp_path, [{"id": "a", "text": CLEAN[0]}])
    assert run_cli("filter", corpus, "--policy", policy, "--out", tmp_path / "o", "--workers", "2",
                   "--no-progress") == 2
    err = capsys.readouterr().err
    assert "checkpoint" in err and "profanity-check" in err and "huggingface_config_path" in err
    assert not (tmp_path / "o").exists()


def test_sentence_mode_removes_only_the_toxic_sentence(tiny_detoxify):
    ckpt, hf = tiny_detoxify
    stage = _stage(scorer=_scorer(ckpt, hf), granularity="sentence", sentence_screen=0.0)
    text = f"{CLEAN[0]} {TOXIC[0]} {CLEAN[1]}\n{CLEAN[2]}"
    stats = StageStats()
    res = stage.process([Document("a", text), Document("b", TOXIC[1]), Document("c", CLEAN[3]),
                         Document("a2", text)], stats)
    kept = {d.id: d for d in res.kept}
    assert kept["a"].text == kept["a2"].text == f"{CLEAN[0]} {CLEAN[1]}\n{CLEAN[2]}"
    assert stats.counters["repeated_windows"] == 1 + 4  # the copy of "a" is scored once, whole and per sentence
    assert kept["a"].meta["toxicity"]["removed_sentences"] == 1
    assert kept["c"].text == CLEAN[3] and [d.id for d, _ in res.dropped] == ["b"]  # nothing left: dropped
    assert stats.counters["sentences_removed"] == 3 and stats.counters["decision:trim"] == 2
    assert stats.counters["ge:toxicity:0.9"] == stats.counters["ge:toxicity:0.1"] == 3  # max over sentences


def test_long_documents_are_scored_in_windows(tiny_detoxify):
    ckpt, hf = tiny_detoxify
    stage = _stage(scorer=_scorer(ckpt, hf, window_overlap=8))
    long_clean = " ".join(CLEAN * 3)
    text = f"{long_clean} {TOXIC[0]}"  # the insult comes after the first window
    from detoxify import Detoxify

    truncated = Detoxify(checkpoint=str(ckpt), huggingface_config_path=str(hf)).predict(text)["toxicity"]
    assert truncated < 0.5  # what plain truncation would have missed
    scorer = stage.scorer
    ids = scorer.tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = scorer.windows([text])
    assert len(windows) > 1 and all(len(w) <= MAX_LEN for _, w in windows)
    covered = [t for _, w in windows for t in w]
    assert all(t in covered for t in ids)
    stats = StageStats()
    res = stage.process([Document("long", text)], stats)
    assert [d.id for d, _ in res.dropped] == ["long"] and stats.counters["multi_window_texts"] == 1


def test_int8_rechecks_windows_near_thresholds(tiny_detoxify):
    ckpt, hf = tiny_detoxify
    texts = [f"{c} {t}" for c, t in zip(CLEAN, TOXIC)] + CLEAN
    exact = _stage(scorer=_scorer(ckpt, hf)).scorer.score(texts)
    int8 = _stage(scorer=_scorer(ckpt, hf, quantize=True)).scorer
    import torch

    quantized = [m for m in int8.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    plain = [m for m in int8.model.modules() if type(m) is torch.nn.Linear]
    assert quantized and not plain  # every Linear layer really is int8
    assert 0 < np.abs(int8.score(texts) - exact).max() < 0.1  # int8 really ran, and stays close
    rechecked = _stage(scorer=_scorer(ckpt, hf, quantize=True, recheck_margin=1.0)).scorer  # margin 1: every window
    np.testing.assert_allclose(rechecked.score(texts), exact, atol=1e-6)
    assert rechecked.pop_counts()["rechecked_windows"] == len(texts)


def test_bf16_autocast_and_its_full_precision_recheck(tiny_detoxify):
    ckpt, hf = tiny_detoxify
    texts = [f"{c} {t}" for c, t in zip(CLEAN, TOXIC)] + CLEAN
    exact = _stage(scorer=_scorer(ckpt, hf)).scorer.score(texts)
    bf16 = _stage(scorer=_scorer(ckpt, hf, bf16=True)).scorer.score(texts)
    assert 0 < np.abs(bf16 - exact).max() < 0.05  # bfloat16 really ran, and stays close
    rechecked = _stage(scorer=_scorer(ckpt, hf, bf16=True, recheck_margin=1.0)).scorer
    np.testing.assert_allclose(rechecked.score(texts), exact, atol=1e-6)
    assert rechecked.pop_counts()["rechecked_windows"] == len(texts)
    with pytest.raises(ValueError, match="exclude each other"):
        ToxicitySettings.model_validate({"scorer": _scorer(ckpt, hf, bf16=True, quantize=True)})


def test_hold_and_flag_actions(tiny_detoxify):
    ckpt, hf = tiny_detoxify
    docs = lambda: [Document("t", TOXIC[2]), Document("c", CLEAN[4])]  # noqa: E731
    held = _stage(scorer=_scorer(ckpt, hf), action="hold").process(docs(), StageStats())
    assert [(d.id, r) for d, r in held.held] == [("t", "toxic:toxicity")] and [d.id for d in held.kept] == ["c"]
    flagged = _stage(scorer=_scorer(ckpt, hf), action="flag").process(docs(), StageStats())
    assert [d.id for d in flagged.kept] == ["t", "c"]
    assert flagged.kept[0].meta["toxicity"]["scores"]["toxicity"] > 0.5 and "toxicity" not in flagged.kept[1].meta


def test_cascade_clears_clean_text_and_measures_agreement(tiny_detoxify):
    ckpt, hf = tiny_detoxify
    stage = _stage(scorer={"name": "cascade", "full": _scorer(ckpt, hf), "clear_below": 0.5, "audit_fraction": 1.0})
    stats = StageStats()
    res = stage.process([Document(f"c{i}", c) for i, c in enumerate(CLEAN)] + [Document("t", TOXIC[0])], stats)
    assert [d.id for d, _ in res.dropped] == ["t"]
    assert stats.counters["doc_cleared"] >= 6 and stats.counters["doc_audited"] == stats.counters["doc_cleared"]
    assert stats.counters["doc_audit_agree"] == stats.counters["doc_audited"]


def test_identity_removal_check_fails_when_it_should(tmp_path):
    neutral = [f"Our neighbours met at the {w} market on Sunday." for w in ("farmers", "flower", "fish", "book")]
    docs = [{"id": f"n{i}", "text": f"{neutral[i % 4]} Visit number {i}."} for i in range(30)]
    docs += [{"id": f"g{i}", "text": f"A fucking loser from the {w} club spoke." if i % 2 else
              f"The {w} club met on Sunday."} for i, w in enumerate(["chess"] * 24)]
    base = {"stage": "toxicity", "scorer": {"name": "profanity-check"}, "thresholds": {"profanity": 0.5},
            "min_identity_mentions": 10, "max_identity_removal_ratio": 2.0}
    corpus = _corpus(tmp_path, docs)
    biased = write_policy(tmp_path / "b.yaml", [{**base, "identity_terms": {"chess_players": ["chess club"]}}])
    assert run_cli("filter", corpus, "--policy", biased, "--out", tmp_path / "b", "--workers", "1", "--no-progress") == 1
    report = json.loads((tmp_path / "b" / "reports" / "toxicity.json").read_text())
    check = next(c for c in report["checks"] if c["name"] == "identity_removal_ratio:chess_players")
    assert not check["passed"] and check["value"] > 2.0
    assert report["details"]["identity"]["groups"]["chess_players"]["removal_rate"] == 0.5 and report["details"]["identity"]["unit"] == "document"
    assert report["metrics"]["scorer"] == "profanity-check"
    unrelated = write_policy(tmp_path / "u.yaml", [{**base, "identity_terms": {"market_goers": ["market"]}}])
    assert run_cli("filter", corpus, "--policy", unrelated, "--out", tmp_path / "u", "--workers", "1",
                   "--no-progress") == 0


def test_policy_errors_and_helpers(tmp_path):
    bad = write_policy(tmp_path / "p.yaml", [{"stage": "toxicity", "scorer": {"name": "detoxify",
                                                                              "checkpoint": "/no/such.ckpt"}}])
    assert run_cli("policy", "check", bad) == 2
    with pytest.raises(InputError, match="labels: profanity"):
        _stage(scorer={"name": "profanity-check"}, thresholds={"toxicity": 0.5})
    text = 'He said "stop." Then left!  New line\nlast one'
    assert [text[s:e] for s, e in sentence_spans(text)] == ['He said "stop."', "Then left!", "New line", "last one"]
    assert remove_spans("A b. C d. E f.", [(5, 9)]) == "A b. E f."
    for name in ("default.yaml", "demo.yaml"):
        assert any(s.name == "toxicity" for s in load_policy(Path(__file__).parents[1] / "policies" / name).stages)


def test_batches_bound_padding():
    from fmaudit.scoring.detoxify import token_budget_batches

    lengths = [50, 52, 54, 120, 122, 300]
    batches = token_budget_batches(list(range(6)), lengths, budget=8192, max_batch=64)
    assert batches == [[0, 1, 2], [3, 4], [5]]  # lengths jump: new batches instead of padding 50 to 300
    for b in batches:
        assert len(b) * max(lengths[k] for k in b) <= 1.1 * sum(lengths[k] for k in b)
    assert token_budget_batches([0, 1, 2], [100, 100, 100], budget=200, max_batch=64) == [[0, 1], [2]]
