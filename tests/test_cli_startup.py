"""What a ``fmaudit filter`` job loads: only the CLI area that holds the command, no entry-point scan for built-in
names, and none of the heavy libraries a data job with a light stage does not use (a guard on module sets, not on
timings: the fixed cost of a job grows with what it imports)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmaudit.cli import AREAS, build_parser

# Libraries a filter job with the noop stage must not import (each costs tenths or hundredths of a second).
NOT_IMPORTED = ("torch", "transformers", "numpy", "pandas", "pyarrow", "matplotlib", "spacy", "presidio_analyzer",
                "sklearn", "jsonschema", "referencing", "fmaudit.scoring", "fmaudit.tune.base", "fmaudit.audits.base")
SHARED = {"eval"}


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


@pytest.mark.parametrize("area", sorted(AREAS.builtins))
def test_each_area_lists_the_commands_it_registers(area):
    parser = argparse.ArgumentParser()
    AREAS.get(area).register(parser.add_subparsers())
    own = set(AREAS.get(area).COMMANDS)
    assert own and own <= _commands(parser)
    assert _commands(parser) - own <= SHARED  # groups several areas add to are built with every area


def test_a_command_parses_the_same_with_only_its_area(tmp_path):
    argv = ["filter", "--policy", "p.yaml", "a.jsonl", "--out", str(tmp_path), "--engine", "local", "-v"]
    assert _commands(build_parser("filter")) == {"filter", "policy", "demo-corpus", "demo"}
    assert vars(build_parser("filter").parse_args(argv)) == vars(build_parser().parse_args(argv))
    assert _commands(build_parser("no-such-command")) == _commands(build_parser())  # every area, for the hint
    assert "filter" in _commands(build_parser()) and "audit" in _commands(build_parser())


def test_filter_job_imports_no_heavy_library_and_scans_no_entry_points(tmp_path):
    corpus = tmp_path / "one.jsonl"
    corpus.write_text('{"id": "d0", "text": "hello world", "meta": {}}\n')
    policy = tmp_path / "noop.yaml"
    policy.write_text("version: 1\nname: bench\npipeline: {shard_size: 5000, samples: 0}\nstages:\n  - stage: noop\n")
    script = f"""
import json, sys
from fmaudit.cli import main
from fmaudit.registry import _all_entry_points
rc = main(["filter", "--policy", {str(policy)!r}, {str(corpus)!r}, "--out", {str(tmp_path / 'out')!r},
           "--workers", "1", "--no-progress"])
print(json.dumps({{"rc": rc, "modules": sorted(sys.modules), "scans": _all_entry_points.cache_info().currsize}}))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0 and (tmp_path / "out" / "reports" / "summary.html").is_file()
    modules = set(result["modules"])
    assert {"fmaudit.pipeline.runner", "fmaudit.stages.noop", "fmaudit.reports.report_validator"} <= modules
    assert sorted(m for m in NOT_IMPORTED if m in modules) == []
    assert not {m for m in modules if m.startswith("fmaudit.cli.")} - {"fmaudit.cli.argtypes", "fmaudit.cli.data",
                                                                       "fmaudit.cli.core"}
    assert result["scans"] == 0  # every name the job looked up is built in: no scan of the installed packages


def test_package_versions_are_importlib_metadata_versions():
    from importlib.metadata import PackageNotFoundError, distributions, version

    from fmaudit.reports.environment import PACKAGES, package_versions

    names = sorted(set(PACKAGES) | {d.metadata["Name"] for d in distributions()} | {"no-such-package-here"})
    expected = {}
    for name in names:
        try:
            expected[name] = version(name)
        except PackageNotFoundError:
            pass
    assert len(expected) > 20 and package_versions(names) == expected


def test_git_revisions_gathered_at_once_say_commit_and_dirty(tmp_path):
    from fmaudit.reports.environment import git_revision, git_revisions

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "a.txt"], ["commit", "-qm", "one"]):
        if args[0] == "add":
            (repo / "a.txt").write_text("one\n")
        subprocess.run(git + args, cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_revisions([str(repo), str(plain), str(tmp_path / "missing")]) == [head, None, None]
    (repo / "a.txt").write_text("two\n")
    assert git_revision(str(repo)) == head + "-dirty"
