"""The examples run as documented."""

import json
import runpy
import subprocess
import sys

from tests.conftest import ROOT, long_text


def test_custom_stage_example(tmp_path):
    corpus = tmp_path / "c.jsonl"
    rows = [{"id": "t", "text": long_text(1)}, {"id": "n", "text": "4711 0815 1234 5678 9999 " * 10}]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_stage.py"), str(corpus),
                          str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "out" / "reports" / "digit_share.json").read_text())
    assert report["counts"]["dropped"] == {"too_many_digits": 1}
    assert report["metrics"]["digit_heavy_share"] == 0.5


def test_reports_in_pandas_example(tmp_path, mixed_corpus, capsys, monkeypatch):
    from fmaudit.pipeline.runner import run_filter
    from fmaudit.policy import policy_from_dict

    policy = policy_from_dict({"version": 1, "name": "x", "pipeline": {"samples": 0}, "stages": [{"stage": "noop"}]})
    run_filter(policy, [mixed_corpus], tmp_path / "o", workers=1, progress=False)
    monkeypatch.setattr(sys, "argv", ["x", str(tmp_path / "o" / "reports")])
    runpy.run_path(str(ROOT / "examples" / "reports_in_pandas.py"))
    out = capsys.readouterr().out
    assert "failed checks" in out and "noop" in out


def test_custom_model_stage_example(lm_job, tmp_path):
    from fmaudit.core.checkpoint import checkpoint_sha256
    from fmaudit.core.config import TrainSettings
    from fmaudit.core.train import train
    from fmaudit.reports import validate_report

    base = train(TrainSettings(model={"preset": "gpt2-tiny"}, seq_len=64, micro_batch=4, max_steps=3,
                               warmup_steps=1, holdout_fraction=0.1, eval_interval=3, eval_batches=1,
                               cpu_threads=1), lm_job["job"], lm_job["tokenizer"], tmp_path / "base",
                 progress=False).model_dir
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"where is the {w}", "response": f"the {w} is near the river"})
                             + "\n" for w in ("cat", "dog", "ball", "tree", "house", "mat") * 3))
    res = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_model_stage.py"), str(base), str(pairs),
                          str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "out" / "reports" / "fit_pairs.json").read_text())
    validate_report(report)
    assert report["kind"] == "model_stage"
    assert report["lineage"][0] == {"role": "input_checkpoint", "path": str(base), "sha256": checkpoint_sha256(base)}
    assert report["metrics"]["final_val_loss"] < report["metrics"]["initial_val_loss"]
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
