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
