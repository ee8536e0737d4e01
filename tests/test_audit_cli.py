"""``fmaudit audit``: exit codes, reports/items/summary, --compare of identical checkpoints, --rescore, a run
folder's trend plot, and bad input (a CSV missing sent_more, a checkpoint that is not a causal LM) exiting 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.test_audits import pair_rows, tiny_lm


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> Path:
    return tiny_lm(tmp_path_factory.mktemp("cli") / "lm")


def policy(path: Path, ppl_max: float = 1e9, stereo_max: float = 1.0) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "name": "audit-test", "audits": {
        "perplexity": {"item_text": "hash", "checks": {"perplexity": {"threshold": ppl_max}}},
        "bias.pairs": {"item_text": "hash", "checks": {"pct_stereotype": {"threshold": stereo_max, "figure": "ci_high"},
                                                      "ties": {"threshold": 0.0}}},
    }}))
    return path


def test_audit_writes_reports_items_summary_and_exit_codes(lm, tmp_path):
    from fmaudit import reports

    out = tmp_path / "out"
    assert run_cli("audit", lm, "--policy", policy(tmp_path / "p.yaml"), "--out", out) == 0
    report = json.loads((out / "reports" / "bias.pairs.json").read_text())
    assert report["kind"] == "audit" and report["protocol"]["items"] == len(pair_rows())
    assert len(report["protocol"]["data_sha256"]) == 64
    m = report["details"]["intervals"]["pct_stereotype"]
    assert m["ci_low"] <= m["value"] <= m["ci_high"] and m["method"] == "wilson"
    assert report["checks"][0]["ci"] == [m["ci_low"], m["ci_high"]]
    items = [json.loads(x) for x in (out / "items" / "bias.pairs.jsonl").read_text().splitlines()]
    assert len(items) == len(pair_rows()) and items[0]["sent_more"].startswith("sha256:")
    summary = json.loads((out / "reports" / "summary.json").read_text())
    assert summary["passed"] and set(summary["reports"]) == {"bias.pairs", "perplexity"}
    frames = reports.load(out / "reports")
    assert set(frames.metrics.kind) == {"audit"}
    row = frames.metrics[(frames.metrics.stage == "perplexity") & (frames.metrics.name == "perplexity")].iloc[0]
    assert row.ci_low <= row.value <= row.ci_high and row.n == 30
    # A gate the model cannot meet: exit 1, and a re-score of the saved items under it needs no model.
    strict = policy(tmp_path / "strict.yaml", ppl_max=1.0)
    assert run_cli("audit", lm, "--policy", strict, "--out", tmp_path / "fail", "--only", "perplexity") == 1
    assert run_cli("audit", out, "--rescore", "--policy", strict, "--out", tmp_path / "rescored") == 1
    again = json.loads((tmp_path / "rescored" / "reports" / "perplexity.json").read_text())
    assert again["metrics"]["perplexity"] == pytest.approx(report_value(out, "perplexity"))
    assert not again["checks"][0]["passed"]


def report_value(out: Path, audit: str) -> float:
    return json.loads((out / "reports" / f"{audit}.json").read_text())["metrics"][audit]


def test_identical_checkpoints_compared_show_no_significant_change(lm, tmp_path):
    twin = shutil.copytree(lm, tmp_path / "twin")
    out = tmp_path / "out"
    assert run_cli("audit", lm, "--policy", policy(tmp_path / "p.yaml"), "--out", out, "--compare", twin) == 0
    rows = json.loads((out / "reports" / "compare.json").read_text())["details"]["comparisons"]
    assert "bias.pairs:pct_stereotype" in rows and "perplexity:perplexity" in rows
    assert all(r["delta"] == 0 and not r["significant"] and r["regression"] in (False, None) for r in rows.values())
    assert rows["bias.pairs:pct_stereotype"]["test"] == "mcnemar_exact"
    # A saved audit folder works as the baseline too.
    assert run_cli("audit", lm, "--policy", policy(tmp_path / "p.yaml"), "--out", tmp_path / "o2",
                   "--compare", out) == 0


def test_run_folder_audits_every_checkpoint_and_plots_the_trend(lm, tmp_path):
    run = tmp_path / "run"
    for step in (10, 20):
        shutil.copytree(lm, run / "checkpoints" / f"step-{step:08d}")
    out = tmp_path / "out"
    assert run_cli("audit", run, "--policy", policy(tmp_path / "p.yaml"), "--out", out, "--only", "bias.pairs") == 0
    trend = json.loads((out / "reports" / "trend.json").read_text())
    assert trend["details"]["steps"] == [10, 20]
    series = trend["details"]["series"]["bias.pairs"]["pct_stereotype"]
    assert [p["step"] for p in series] == [10, 20] and series[0]["value"] == series[1]["value"]
    assert (out / "reports" / "trend_bias.pairs.png").stat().st_size > 1000
    assert (out / "step-00000010" / "items" / "bias.pairs.jsonl").is_file()


def test_bad_input_exits_2_naming_file_and_line(lm, tmp_path, capsys):
    bad = tmp_path / "pairs.csv"
    bad.write_text("sentence,sent_less,stereo_antistereo,bias_type\na,b,stereo,gender\n")
    p = policy(tmp_path / "p.yaml")
    assert run_cli("audit", lm, "--policy", p, "--out", tmp_path / "o", "--data", f"bias.pairs={bad}") == 2
    assert f"{bad}:1: missing column 'sent_more'" in capsys.readouterr().err
    from transformers import BertConfig, BertForMaskedLM

    BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=16)).save_pretrained(tmp_path / "bert")
    assert run_cli("audit", tmp_path / "bert", "--policy", p, "--out", tmp_path / "o3") == 2
    assert "not a causal language model" in capsys.readouterr().err
    assert run_cli("audit", lm, "--policy", p, "--out", tmp_path / "o4", "--only", "nope") == 2
    assert "unknown audit 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_run_folder_on_ray_gives_the_local_reports(lm, tmp_path):
    pytest.importorskip("ray")
    run = tmp_path / "run"
    for step in (5, 15):
        shutil.copytree(lm, run / "checkpoints" / f"step-{step:08d}")
    p = policy(tmp_path / "p.yaml")
    for engine in ("local", "ray"):
        assert run_cli("audit", run, "--policy", p, "--out", tmp_path / engine, "--only", "bias.pairs",
                       "--engine", engine) == 0
    for step in ("step-00000005", "step-00000015"):
        local, remote = (json.loads((tmp_path / e / step / "reports" / "bias.pairs.json").read_text())
                         for e in ("local", "ray"))
        assert local["metrics"] == remote["metrics"] and local["details"]["intervals"] == remote["details"]["intervals"]
        assert ((tmp_path / "local" / step / "items" / "bias.pairs.jsonl").read_bytes()
                == (tmp_path / "ray" / step / "items" / "bias.pairs.jsonl").read_bytes())
    trends = [json.loads((tmp_path / e / "reports" / "trend.json").read_text())["details"]["series"] for e in ("local", "ray")]
    assert trends[0] == trends[1]
    assert run_cli("audit", lm, "--policy", p, "--out", tmp_path / "one", "--engine", "ray") == 2


def test_a_small_model_is_audited_on_one_cpu_thread(lm, monkeypatch):
    import torch

    from fmaudit.audits import runner
    from fmaudit.audits.model import ModelUnderAudit

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        mua = ModelUnderAudit(lm)
        with runner.cpu_threads(mua):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2  # restored
        with runner.cpu_threads(mua, threads=2):  # --threads 2
            assert torch.get_num_threads() == 2
        monkeypatch.setattr(runner, "SMALL_MODEL_PARAMETERS", 10)  # a "large" model keeps torch's setting
        with runner.cpu_threads(mua):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert run_cli("audit", lm, "--policy", "default", "--out", "x", "--threads", "0") == 2
