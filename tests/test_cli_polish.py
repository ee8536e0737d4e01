"""Command-line polish: -v/-q after the sub-command (and -v says what the job does), --engine checked while
parsing, a mistyped command answered with the nearest, filter naming summary.html and writing a dataset card that
`datasets.load_dataset` reads as the train split, and a warning when training data is not a filter output."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import make_corpus, run_cli, write_policy

STAGES = [{"stage": "min_length", "min_chars": 20, "min_words": 5}]


@pytest.fixture
def job(tmp_path):
    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 30)
    return corpus, write_policy(tmp_path / "p.yaml", STAGES, samples=0, shard_size=10)


def test_verbose_after_the_subcommand_logs_the_job(job, tmp_path, capsys, caplog):
    corpus, policy = job
    with caplog.at_level(logging.INFO, logger="fmaudit"):
        assert run_cli("filter", "--policy", policy, corpus, "--out", tmp_path / "o", "--no-progress",
                       "--workers", "1", "-v") == 0
    assert "apply pass: 1 input files" in caplog.text and "shard 00002 committed: 10 records" in caplog.text
    out = capsys.readouterr().out
    assert f"summary: {tmp_path / 'o' / 'reports' / 'summary.html'}" in out
    assert run_cli("filter", "--policy", policy, corpus, "--out", tmp_path / "o", "--no-progress", "-q") == 0


def test_engine_and_command_checked_while_parsing(job, tmp_path, capsys):
    corpus, policy = job
    assert run_cli("filter", "--policy", policy, corpus, "--out", tmp_path / "o", "--engine", "rya") == 2
    assert "invalid choice: 'rya'" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert run_cli("fitler", "--policy", policy) == 2
    assert "did you mean 'filter'?" in capsys.readouterr().err


def test_filter_output_is_a_loadable_dataset(job, tmp_path):
    datasets = pytest.importorskip("datasets")
    corpus, policy = job
    out = tmp_path / "o"
    assert run_cli("filter", "--policy", policy, corpus, "--out", out, "--no-progress", "--workers", "1") == 0
    assert (out / "README.md").read_text().startswith("---\nconfigs:\n")
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    kept = [json.loads(line)["id"] for p in sorted((out / "data").glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert list(ds) == ["train"] and ds["train"]["id"] == kept


def test_training_data_that_is_not_a_filter_output_warns(tmp_path, caplog):
    from fmaudit.core.data import data_folder

    make_corpus(tmp_path / "raw" / "c.jsonl", 3)
    with caplog.at_level(logging.WARNING, logger="fmaudit"):
        data_folder(tmp_path / "raw")
    assert "not the output of `fmaudit filter`" in caplog.text
