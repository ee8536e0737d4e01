"""Third-party components plug in through entry points: a tiny package, installed in the test, registers a
scorer, an audit and a model stage, and a policy uses them by name."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_corpus, run_cli

PLUGIN = '''
"""A third-party fmaudit plug-in: a scorer that measures shouting (the share of upper-case letters)."""
from typing import Literal

import numpy as np

from fmaudit.scoring.base import Scorer, ScorerSettings


class ShoutingSettings(ScorerSettings):
    name: Literal["shouting"] = "shouting"
    min_letters: int = 1


class Shouting(Scorer):
    name = "shouting"
    labels = ("shouting",)
    version = "0.1"
    Settings = ShoutingSettings

    def __init__(self, settings=None):
        self.settings = settings or ShoutingSettings()

    def score(self, texts, prompts=None):
        out = []
        for t in texts:
            letters = [c for c in t if c.isalpha()]
            out.append(sum(c.isupper() for c in letters) / len(letters) if len(letters) >= self.settings.min_letters else 0.0)
        return np.asarray(out, dtype=np.float32).reshape(-1, 1)


from fmaudit.audits.base import Audit, AuditResult, AuditSettings, Protocol
from fmaudit.audits.stats import from_items


class FluencySettings(AuditSettings):
    texts: list[str] = ["the cat sat on the mat.", "the dog ran in the park."]


class Fluency(Audit):
    # mean log-likelihood per token of a few fixed sentences
    name = "fluency"
    Settings = FluencySettings

    def run(self, mua, ctx):
        rows = mua.sequence_logprobs(self.settings.texts)
        items = [{"id": str(i), "lp_per_token": r["logprob"] / r["tokens"]} for i, r in enumerate(rows)]
        metrics = {"lp_per_token": from_items(items, "lp_per_token", seed=self.settings.seed)}
        return AuditResult(metrics, self.checks(metrics), items, Protocol(None, None, len(items)))


from fmaudit.tune.base import ModelStage, ModelStageSettings, StageOutput


class CopySettings(ModelStageSettings):
    note: str = "copied"


class CopyCheckpoint(ModelStage):
    # copies the checkpoint (a stand-in for a real transformation), with lineage
    name = "copy_checkpoint"
    Settings = CopySettings

    def run(self, checkpoint, out, *, policy=None, stop_after=None, progress=True, device=None):
        import shutil
        from fmaudit.reports import now_iso

        started = now_iso()
        shutil.copytree(checkpoint, out / "model", dirs_exist_ok=True)
        report = self.make_report(out, checkpoint, started, policy=policy, metrics={"note": self.settings.note},
                                  extra_lineage=self.lineage(out / "model", role="output"))
        return StageOutput(out, checkpoint=out / "model", report=report)
'''


def install_plugin(tmp_path: Path, monkeypatch, source: str, entry_points: dict[str, dict[str, str]],
                   package: str = "fmaudit_plugin_example") -> Path:
    """Build and install ``package`` (non-editable) into a folder put on sys.path; entry-point targets name
    ``fmaudit_plugin_example``, replaced by ``package`` (each test its own package: modules stay imported)."""
    entry_points = {g: {k: v.replace("fmaudit_plugin_example", package) for k, v in eps.items()}
                    for g, eps in entry_points.items()}
    src = tmp_path / "plugin-src"
    (src / package).mkdir(parents=True)
    (src / package / "__init__.py").write_text(textwrap.dedent(source))
    groups = "\n".join(f'[project.entry-points."{group}"]\n' + "\n".join(f'"{k}" = "{v}"' for k, v in eps.items())
                       for group, eps in entry_points.items())
    (src / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "PACKAGE"
        version = "0.1.0"
        ''').replace("PACKAGE", package.replace("_", "-")) + groups + "\n")
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    monkeypatch.syspath_prepend(str(target))
    return target


def test_third_party_scorer_runs_in_the_toxicity_stage(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, PLUGIN, {"fmaudit.scorers": {"shouting": "fmaudit_plugin_example:Shouting"}})
    from fmaudit.scoring import SCORERS

    assert "shouting" in SCORERS.names()
    corpus = make_corpus(tmp_path / "corpus" / "a.jsonl", 6)
    with open(corpus, "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "loud", "text": "STOP SHOUTING AT EVERYONE IN THIS THREAD RIGHT NOW PLEASE"}) + "\n")
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump({"version": 1, "name": "plugins", "stages": [{
        "stage": "toxicity", "scorer": {"name": "shouting", "min_letters": 5}, "thresholds": {"shouting": 0.8},
        "max_identity_removal_ratio": None, "min_cascade_agreement": None}]}))
    assert run_cli("policy", "check", policy) == 0
    assert run_cli("filter", corpus.parent, "--policy", policy, "--out", tmp_path / "out", "--workers", "1") == 0
    dropped = [json.loads(line) for p in (tmp_path / "out" / "dropped").glob("*.jsonl") for line in p.open()]
    assert [d["id"] for d in dropped] == ["loud"]
    report = json.loads((tmp_path / "out" / "reports" / "toxicity.json").read_text())
    assert report["kind"] == "data_stage"


def test_a_bad_plugin_setting_names_file_line_and_field(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, PLUGIN, {"fmaudit.scorers": {"shouting": "fmaudit_plugin_example:Shouting"}})
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nname: bad\nstages:\n  - stage: toxicity\n    scorer:\n      name: shouting\n"
                      "      min_letters: lots\n    thresholds: {shouting: 0.5}\n")
    from fmaudit.errors import PolicyError
    from fmaudit.policy import load_policy

    with pytest.raises(PolicyError, match=r"p.yaml:7: stages\[0\]\.scorer\.min_letters"):
        load_policy(policy)


def test_third_party_audit_and_model_stage_run_from_a_policy(tmp_path, monkeypatch, capsys):
    from tests.test_audits import tiny_lm

    install_plugin(tmp_path, monkeypatch, PLUGIN, {
        "fmaudit.audits": {"fluency": "fmaudit_plugin_example:Fluency"},
        "fmaudit.model_stages": {"copy_checkpoint": "fmaudit_plugin_example:CopyCheckpoint"}},
        package="fmaudit_plugin_models")
    lm = tiny_lm(tmp_path / "lm")
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump({"version": 1, "name": "plugins", "tune": {"copy_checkpoint": {"note": "hi"}},
                                      "audits": {"fluency": {"checks": {"lp_per_token": {"threshold": 0.0}}}}}))
    assert run_cli("policy", "check", policy) == 0
    assert run_cli("tune", "--list") == 0 and "copy_checkpoint" in capsys.readouterr().out
    assert run_cli("tune", "copy_checkpoint", lm, "--policy", policy, "--out", tmp_path / "tuned") == 0
    report = json.loads((tmp_path / "tuned" / "reports" / "copy_checkpoint.json").read_text())
    assert report["kind"] == "model_stage" and report["metrics"]["note"] == "hi"
    roles = {e["role"]: e["sha256"] for e in report["lineage"]}
    assert roles["input_checkpoint"] == roles["output"]  # a copy: same weights, same hash
    assert run_cli("audit", tmp_path / "tuned" / "model", "--policy", policy, "--out", tmp_path / "audit") == 0
    audit = json.loads((tmp_path / "audit" / "reports" / "fluency.json").read_text())
    assert audit["kind"] == "audit" and audit["checks"][0]["passed"] and audit["metrics"]["lp_per_token"] < 0
    from fmaudit import reports

    frames = reports.load(tmp_path / "audit")
    assert set(frames.checks.stage) == {"fluency"}


def test_a_policy_naming_an_audit_whose_package_is_missing_is_not_ready_and_audit_exits_2(tmp_path, monkeypatch, capsys):
    source = PLUGIN + """

class NeedsPackage(Fluency):
    name = "needs_package"
    requires = {"fmaudit_absent_package": "explain"}
"""
    install_plugin(tmp_path, monkeypatch, source, {"fmaudit.audits": {"needs_package": "fmaudit_plugin_example:NeedsPackage"}},
                   package="fmaudit_plugin_missing")
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump({"version": 1, "name": "missing", "audits": {"needs_package": {}}}))
    assert run_cli("policy", "check", policy) == 0  # valid: the missing package is a NOT READY line
    out = capsys.readouterr().out
    assert "NOT READY:" in out and "fmaudit_absent_package" in out and "pip install 'fmaudit[explain]'" in out
    assert run_cli("policy", "check", "--ready", policy) == 2
    assert run_cli("audit", tmp_path, "--policy", policy, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "fmaudit_absent_package" in err and "pip install 'fmaudit[explain]'" in err
