"""Policy validation: errors name the file, the field and the line, and exit 2."""

from pathlib import Path

import pytest

from fmaudit.errors import PolicyError
from fmaudit.policy import load_policy
from tests.conftest import ROOT, run_cli


@pytest.mark.parametrize("name", ["default.yaml", "demo.yaml"])
def test_shipped_policies_are_valid(name):
    policy = load_policy(ROOT / "policies" / name)
    assert policy.stages and len(policy.sha256) == 64
    assert run_cli("policy", "check", ROOT / "policies" / name) == 0


BAD = {
    "unknown top-level key": ("version: 1\nname: x\nstagez: []\n", "stagez", 3),
    "unknown stage key": ("version: 1\nname: x\nstages:\n  - stage: min_length\n    min_charz: 3\n",
                          "stages[0].min_charz", 5),
    "wrong type": ("version: 1\nname: x\nstages:\n  - stage: min_length\n    min_chars: many\n",
                   "stages[0].min_chars", 5),
    "out of range": ("version: 1\nname: x\nstages:\n  - stage: min_length\n    max_drop_fraction: 1.5\n",
                     "stages[0].max_drop_fraction", 5),
    "unknown stage": ("version: 1\nname: x\nstages:\n  - stage: nosuch\n", "stages[0].stage", 4),
    "pipeline range": ("version: 1\nname: x\npipeline:\n  shard_size: 0\nstages: []\n", "pipeline.shard_size", 4),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_policy_names_file_field_and_line(tmp_path, capsys, case):
    text, field, line = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as e:
        load_policy(path)
    assert f"{path}:{line}: {field}" in str(e.value)
    assert run_cli("policy", "check", path) == 2
    assert field in capsys.readouterr().err


def test_not_yaml_and_missing_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: [unclosed\n")
    assert run_cli("policy", "check", path) == 2
    assert run_cli("policy", "check", tmp_path / "missing.yaml") == 2


def test_select_stages(tmp_path):
    policy = load_policy(ROOT / "policies" / "default.yaml")
    assert [s.name for s in policy.select(["min_length"])] == ["min_length"]
    with pytest.raises(PolicyError, match="nosuch"):
        policy.select(["nosuch"])


def test_policy_check_validates_model_overrides(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: x\ntrain:\n  max_steps: 10\n  model:\n    preset: llama-tiny\n    overrides: {num_hiden_layers: 3}\n"
                    "stages: []\n")
    assert run_cli("policy", "check", path) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "train.model.overrides.num_hiden_layers" in err
    path.write_text(path.read_text().replace("num_hiden_layers", "num_hidden_layers"))
    assert run_cli("policy", "check", path) == 0
