"""``fmaudit policy check`` runs the preflight of every model stage and audit the policy configures: a scorer
checkpoint that is not available offline, a label it lacks or a calibration file that is not there is a NOT READY line with file and line
(exit 0; ``--ready``: exit 2), and ``fmaudit audit`` stops on the same problem before loading any model."""

from __future__ import annotations

import re

import yaml

from tests.conftest import run_cli


def test_policy_check_lists_what_the_audits_lack(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "name": "audit-preflight", "audits": {
        "perplexity": {},
        "toxicity.generation": {"scorer": {"name": "detoxify"}},  # its weights are not in this machine's cache
        "bias.generation": {"sentiment_label": "no_such_label"},
        "refusal": {"calibration": {"file": str(tmp_path / "missing_calibration.csv")}},
    }}, sort_keys=False))
    assert run_cli("policy", "check", path) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "NOT READY:" in line]
    assert len(lines) == 3, out
    lines = dict(zip(("toxicity.generation", "bias.generation", "refusal"), lines))
    assert re.search(rf"{re.escape(str(path))}:[5-7]: audits.toxicity.generation: audit toxicity.generation, "
                     r"setting scorer: detoxify model 'original': its weights are not available offline",
                     lines["toxicity.generation"])  # the line of the section
    assert "sentiment_scorer: scorer vader has no label 'no_such_label'" in lines["bias.generation"]
    assert "missing_calibration.csv: no such file or folder (audit refusal, setting calibration.file)" in lines["refusal"]
    assert "checked: audits.perplexity: preflight" in out
    assert run_cli("policy", "check", "--ready", path) == 2
    capsys.readouterr()
    assert run_cli("audit", tmp_path, "--policy", path, "--out", tmp_path / "out") == 2  # before any model loads
    assert "not available offline" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_shipped_policies_check_their_model_stages_and_audits(capsys):
    assert run_cli("policy", "check", "demo") == 0
    out = capsys.readouterr().out
    assert "checked: tune.adapt: preflight" in out and "checked: audits.refusal: preflight" in out
