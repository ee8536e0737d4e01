"""The progress bar of ``fmaudit filter``: on stderr, with a total (input bytes) and an ETA, moving within a shard
(in process and with worker processes), absent with ``--no-progress``, and never changing the output."""

from __future__ import annotations

import re

import pytest

from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy
from tests.conftest import make_corpus, run_cli, write_policy

# tqdm's line: "filter:  50%|#####     | 13.2k/26.4k [00:01<00:01, 9.81kB/s, 0 docs]"
BAR = re.compile(r"filter:\s+\d+%\|[^|]*\|\s*(?P<n>[\d.]+[kMG]?)/(?P<total>[\d.]+[kMG]?) \[[\d:]+<(?P<eta>[^,\]]+)")


def _bar_states(stderr: str) -> list[re.Match]:
    return [m for m in map(BAR.search, re.split(r"[\r\n]", stderr)) if m]


@pytest.fixture
def one_shard(tmp_path):
    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 400)
    policy = write_policy(tmp_path / "p.yaml", [{"stage": "noop", "sleep_s": 0.02}], samples=0, shard_size=1000,
                          batch_size=50)  # one shard of 400 documents, 8 batches
    return corpus, load_policy(policy), policy


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_has_a_total_and_moves_within_a_shard(one_shard, tmp_path, capsys, workers):
    corpus, policy, _ = one_shard
    run_filter(policy, [corpus], tmp_path / "quiet", workers=workers, progress=False)
    assert "filter:" not in capsys.readouterr().err
    run_filter(policy, [corpus], tmp_path / "bar", workers=workers, progress=True, progress_interval=0)
    states = _bar_states(capsys.readouterr().err)
    assert states, "no progress bar on stderr"
    from tqdm import tqdm

    totals = {m["total"] for m in states}
    assert totals == {tqdm.format_sizeof(corpus.stat().st_size, divisor=1024)}, totals  # the input's size
    within = [m["n"] for m in states if m["n"] not in ("0.00", m["total"])]
    assert len(set(within)) >= 2, f"the bar moved {len(set(within))} times inside the only shard: {within}"
    assert any(re.fullmatch(r"\d\d:\d\d", m["eta"]) for m in states)  # an ETA
    assert states[-1]["n"] == states[-1]["total"]
    for folder in ("data", "dropped"):  # the bar changes nothing in the output
        assert sorted(p.read_bytes() for p in (tmp_path / "quiet" / folder).glob("*")) == \
            sorted(p.read_bytes() for p in (tmp_path / "bar" / folder).glob("*"))


def test_no_progress_flag_turns_the_bar_off(one_shard, tmp_path, capsys):
    corpus, _, policy = one_shard
    assert run_cli("filter", "--policy", policy, corpus, "--out", tmp_path / "o", "--workers", "1",
                   "--no-progress") == 0
    assert "filter:" not in capsys.readouterr().err
