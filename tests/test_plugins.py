"""Third-party components plug in through entry points: a tiny package, installed in the test, registers a
scorer (and, as their contracts land, an audit and a model stage), and a policy uses them by name."""

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
'''


def install_plugin(tmp_path: Path, monkeypatch, source: str, entry_points: dict[str, dict[str, str]]) -> Path:
    """Build and install package ``fmaudit_plugin_example`` (non-editable) into a folder put on sys.path."""
    src = tmp_path / "plugin-src"
    (src / "fmaudit_plugin_example").mkdir(parents=True)
    (src / "fmaudit_plugin_example" / "__init__.py").write_text(textwrap.dedent(source))
    groups = "\n".join(f'[project.entry-points."{group}"]\n' + "\n".join(f'"{k}" = "{v}"' for k, v in eps.items())
                       for group, eps in entry_points.items())
    (src / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "fmaudit-plugin-example"
        version = "0.1.0"
        ''') + groups + "\n")
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
