"""The in-process engine commits each shard on a thread while the next is read: in order, one at a time, a
shard's result only once its files and marker are down, and a failed commit stops the job with its own error."""

import threading

import pytest

from fmaudit.corpus import read_corpus
from fmaudit.pipeline.layout import JobLayout
from fmaudit.pipeline.runner import run_filter
from fmaudit.pipeline.worker import ProcessorSpec, ShardProcessor, ShardTask
from fmaudit.policy import load_policy
from tests.conftest import make_corpus, write_policy


def test_results_come_after_their_commits(tmp_path):
    records = list(read_corpus([make_corpus(tmp_path / "c.jsonl", 40)]))
    out = tmp_path / "out"
    layout = JobLayout(out)
    layout.prepare()
    processor = ShardProcessor(ProcessorSpec(str(out), [("noop", {})], samples=0))
    seen = []
    for result in processor.process_all(ShardTask(i, records[4 * i:4 * i + 4]) for i in range(10)):
        assert layout.is_done(result.index)  # files, hashes, statistics and marker are on disk
        seen.append(result.index)
    assert seen == list(range(10))


def test_a_failed_commit_stops_the_job_with_its_error(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "c.jsonl", 40)
    policy = load_policy(write_policy(tmp_path / "p.yaml", [{"stage": "noop"}], shard_size=4, samples=0))
    commits, real = [], JobLayout.commit_shard

    def commit(self, index, *args):
        commits.append((index, threading.current_thread().name))
        if index == 5:
            raise OSError(28, "No space left on device")
        real(self, index, *args)

    monkeypatch.setattr(JobLayout, "commit_shard", commit)
    with pytest.raises(OSError, match="No space left"):
        run_filter(policy, [corpus], tmp_path / "out", workers=1, progress=False)
    assert [i for i, _ in commits] == [0, 1, 2, 3, 4, 5]  # in order; none after the failure
    assert all(name.startswith("fmaudit-commit") for _, name in commits)
    layout = JobLayout(tmp_path / "out")
    assert [layout.is_done(i) for i in range(10)] == [True] * 5 + [False] * 5
    monkeypatch.setattr(JobLayout, "commit_shard", real)
    again = run_filter(policy, [corpus], tmp_path / "out", workers=1, progress=False)  # resumes from shard 5
    assert again.counts["in"] == 40 and again.summary["exit_code"] == 0
