"""Output and input paths: a bad --out exits 2, --out inside the inputs is not read as input, one job at a
time per folder, and inputs are hashed as read (an edit with mtime restored, or a file overwritten during
the run, is detected)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from fmaudit.corpus import Document, check_read_hashes, read_corpus
from fmaudit.errors import InputError
from fmaudit.pipeline.layout import JobLayout
from fmaudit.pipeline.runner import run_filter
from fmaudit.policy import load_policy
from tests.conftest import long_text, make_corpus, run_cli, write_policy


def _policy(tmp_path):
    return write_policy(tmp_path / "p.yaml", [{"stage": "min_length", "min_chars": 20}], shard_size=4, samples=0)


def _filter(tmp_path, corpus, out, *extra):
    return run_cli("filter", "--policy", _policy(tmp_path), corpus, "--out", out, "--workers", "1", "--no-progress",
                   *extra)


@pytest.mark.parametrize("where", ["file", "under_file", "unwritable"])
def test_bad_out_exits_2(tmp_path, capsys, where):
    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 8)
    (tmp_path / "f").write_text("a file")
    out = {"file": tmp_path / "f", "under_file": tmp_path / "f" / "out",
           "unwritable": "/proc/fmaudit-test-out"}[where]  # /proc: not writable, even by root
    assert _filter(tmp_path, corpus, out) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "Traceback" not in err
    assert (tmp_path / "f").read_text() == "a file"


def test_out_inside_the_input_folder_is_not_read_as_input(tmp_path, capsys):
    corpus = tmp_path / "c"
    make_corpus(corpus / "c.jsonl", 8)
    out = corpus / "filtered"
    assert _filter(tmp_path, corpus, out) == 0
    assert _filter(tmp_path, corpus, out) == 0  # not "changed inputs": its own output is no input
    assert "already complete" in capsys.readouterr().out
    inputs = json.loads((out / "reports" / "pipeline.json").read_text())["inputs"]
    assert [i["path"] for i in inputs] == [str(corpus / "c.jsonl")]


def test_a_second_job_into_the_same_folder_exits_2_naming_the_holder(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 8)
    out = tmp_path / "out"
    with JobLayout(out).locked():  # as a running job holds it
        assert _filter(tmp_path, corpus, out) == 2
        err = capsys.readouterr().err
        assert "in use" in err and f"pid {os.getpid()}" in err
        assert not (out / "data").exists()
    assert _filter(tmp_path, corpus, out) == 0  # released when the holder is done


def test_an_edit_in_place_with_mtime_restored_is_detected(tmp_path, capsys):
    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 8)
    out = tmp_path / "out"
    assert _filter(tmp_path, corpus, out) == 0
    st = corpus.stat()
    data = corpus.read_bytes()
    corpus.write_bytes(data.replace(b"word1", b"WORD1", 1))  # same size
    os.utime(corpus, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert corpus.stat().st_size == st.st_size and corpus.stat().st_mtime_ns == st.st_mtime_ns
    assert _filter(tmp_path, corpus, out) == 2
    assert "changed: inputs" in capsys.readouterr().err


def test_inputs_are_hashed_as_read_and_a_file_overwritten_while_read_is_caught(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "w") as f:
        for i in range(4000):  # about 3 MB: read in several blocks
            f.write(json.dumps({"id": str(i), "text": long_text(i, 100)}) + "\n")
    recorded = {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}
    hashes: dict = {}
    docs = [r for r in read_corpus([path], hashes=hashes) if isinstance(r, Document)]
    assert len(docs) == 4000 and hashes == recorded  # the bytes read are the bytes recorded
    check_read_hashes(recorded, hashes)
    hashes = {}
    records = read_corpus([path], hashes=hashes)
    next(records)
    with open(path, "r+b") as f:  # overwritten in place (same inode) while the reader is in its first block
        f.seek(2_500_000)
        f.write(b"X" * 100)
    list(records)
    assert hashes[str(path)] != recorded[str(path)]
    with pytest.raises(InputError, match="changed while the job read it"):
        check_read_hashes(recorded, hashes)


def test_filter_refuses_to_complete_when_an_input_changes_during_the_run(tmp_path):
    """A stage overwrites the input as the job runs: the job exits with an input error, not marked complete."""
    from fmaudit.stages import register
    from fmaudit.stages.base import Stage, StageResult

    path = tmp_path / "c" / "big.jsonl"
    path.parent.mkdir()
    with open(path, "w") as f:
        for i in range(3000):
            f.write(json.dumps({"id": str(i), "text": long_text(i, 100)}) + "\n")

    @register
    class Overwriter(Stage):
        name = "overwrite_input_for_test"

        def process(self, docs, stats):
            if docs and docs[0].id == "0":
                with open(path, "r+b") as f:
                    f.seek(path.stat().st_size - 200_000)
                    f.write(b" " * 100)
            return StageResult(kept=docs)

    policy = load_policy(write_policy(tmp_path / "p.yaml", [{"stage": "overwrite_input_for_test"}], shard_size=100,
                                      samples=0))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="changed while the job read it"):
        run_filter(policy, [path.parent], out, workers=1, progress=False)
    assert not (out / ".fmaudit" / "complete").exists()


def test_a_resumed_job_reports_total_and_resumed_wall_time_apart(tmp_path):
    """A run that stops after some shards, then a resumed one: wall_s is the job's time over both runs, and
    the resumed run's own time is reported apart (docs/s from the whole, not the last sliver)."""
    import time

    from fmaudit.stages import register
    from fmaudit.stages.base import Stage, StageResult

    flag = tmp_path / "failed-once"

    @register
    class FailOnce(Stage):
        name = "fail_once_for_test"

        def process(self, docs, stats):
            time.sleep(0.05)
            if any(d.id == "doc-30" for d in docs) and not flag.exists():
                flag.write_text("")
                raise RuntimeError("stopped as a kill would")
            return StageResult(kept=docs)

    corpus = make_corpus(tmp_path / "c" / "c.jsonl", 40)
    policy = load_policy(write_policy(tmp_path / "p.yaml", [{"stage": "fail_once_for_test"}], shard_size=5,
                                      samples=0))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        run_filter(policy, [corpus], out, workers=1, progress=False)
    run_filter(policy, [corpus], out, workers=1, progress=False)
    report = json.loads((out / "reports" / "pipeline.json").read_text())
    t, m = report["timings"], report["metrics"]
    assert t["runs"] == 2 and m["shards_resumed"] == 6
    assert t["earlier_runs_wall_s"] >= 6 * 0.05  # six shards of the first run
    assert t["wall_s"] == pytest.approx(t["earlier_runs_wall_s"] + t["resumed_wall_s"])
    assert m["docs_per_s"] == pytest.approx(40 / t["wall_s"])
