"""Policy fuzz: every kind of broken policy exits 2 naming ``FILE:LINE: field`` (never a traceback, exit 3),
from ``fmaudit policy check`` and from the command that would run it."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli

HEAD = "version: 1\nname: fuzz\n"
TRAIN = HEAD + "stages: []\ntrain:\n  max_steps: 10\n  model:\n    preset: llama-tiny\n    overrides:\n"

# name -> (policy bytes, field named, line named)
CASES: dict[str, tuple[bytes, str, int]] = {
    "unknown top-level key": (HEAD.encode() + b"stagez: []\n", "stagez", 3),
    "unknown stage key": (HEAD.encode() + b"stages:\n  - stage: min_length\n    min_charz: 3\n",
                          "stages[0].min_charz", 5),
    "wrong type": (HEAD.encode() + b"stages:\n  - stage: min_length\n    min_chars: many\n", "stages[0].min_chars", 5),
    "out of range": (HEAD.encode() + b"stages:\n  - stage: min_length\n    max_drop_fraction: 1.5\n",
                     "stages[0].max_drop_fraction", 5),
    "unknown stage": (HEAD.encode() + b"stages:\n  - stage: nosuch\n", "stages[0].stage", 4),
    "stage twice": (HEAD.encode() + b"stages:\n  - stage: min_length\n  - stage: min_length\n", "stages[1].stage", 5),
    "pipeline range": (HEAD.encode() + b"pipeline:\n  shard_size: 0\nstages: []\n", "pipeline.shard_size", 4),
    "max_chars range": (HEAD.encode() + b"pipeline:\n  max_chars: 0\nstages: []\n", "pipeline.max_chars", 4),
    "not UTF-8": (HEAD.encode() + b"description: caf\xe9\nstages: []\n", "not UTF-8", 3),
    "duplicate key": (HEAD.encode() + b"stages:\n  - stage: min_length\n    min_chars: 10\n    min_chars: 99\n",
                      "stages[0].min_chars: duplicate key (first at line 5", 6),
    "duplicate top-level key": (HEAD.encode() + b"stages: []\nname: again\n", "name: duplicate key (first at line 2",
                                4),
    "unknown override": (TRAIN.encode() + b"      num_hiden_layers: 3\n", "train.model.overrides.num_hiden_layers", 9),
    "negative hidden size": (TRAIN.encode() + b"      hidden_size: -1\n", "train.model.overrides.hidden_size", 9),
    "negative intermediate size": (TRAIN.encode() + b"      intermediate_size: -5\n",
                                   "train.model.overrides.intermediate_size", 9),
    "zero layers": (TRAIN.encode() + b"      num_hidden_layers: 0\n", "train.model.overrides.num_hidden_layers", 9),
    "rope factor not a number": (TRAIN.encode() + b"      rope_parameters: {rope_type: yarn, factor: x}\n",
                                 "train.model.overrides.rope_parameters", 9),
    "rope unknown keys": (TRAIN.encode() + b"      rope_parameters: {nonsense: 1}\n",
                          "train.model.overrides.rope_parameters", 9),
    "not a mapping": (b"- just\n- a list\n", "a policy is a YAML mapping", 0),
    "not YAML": (HEAD.encode() + b"stages: [unclosed\n", "not valid YAML", 4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_policy_exits_2_naming_file_line_and_field(tmp_path, capsys, case):
    text, field, line = CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    assert run_cli("policy", "check", path) == 2
    err = capsys.readouterr().err
    where = f"{path}:{line}: " if line else f"{path}: "
    assert where in err and field in err, err
    assert "Traceback" not in err


def test_run_commands_refuse_the_same_policies(tmp_path, capsys, mixed_corpus):
    """``filter`` and ``train`` stop with the same message, before any work."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(CASES["duplicate key"][0])
    assert run_cli("filter", "--policy", path, mixed_corpus, "--out", tmp_path / "out", "--no-progress") == 2
    assert f"{path}:6: stages[0].min_chars: duplicate key" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    path.write_bytes(CASES["negative hidden size"][0])
    assert run_cli("train", "--policy", path, "--data", tmp_path, "--tokenizer", tmp_path, "--out",
                   tmp_path / "run") == 2
    assert f"{path}:9: train.model.overrides.hidden_size" in capsys.readouterr().err


def test_a_missing_spacy_model_is_named_by_check_and_filter(tmp_path, capsys, mixed_corpus):
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "stages:\n  - stage: min_length\n  - stage: cda\n    spacy_model: no_such_model_xx\n")
    assert run_cli("policy", "check", path) == 0  # valid, but says plainly what a run lacks here
    out = capsys.readouterr().out
    assert f"NOT READY: {path}:6: stages[1].spacy_model" in out and "not checked:" in out
    assert run_cli("policy", "check", "--ready", path) == 2
    capsys.readouterr()
    assert run_cli("filter", "--policy", path, mixed_corpus, "--out", tmp_path / "out", "--no-progress") == 2
    err = capsys.readouterr().err
    assert f"{path}:6: stages[1].spacy_model" in err and "no_such_model_xx" in err
    assert not (tmp_path / "out").exists()
