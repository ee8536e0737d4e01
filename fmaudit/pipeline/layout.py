"""The output folder of a data job, and the atomic commit of one shard.

    OUT/data/00000.jsonl          kept documents (and added ones, with meta.counterfactual_of etc.)
    OUT/dropped/00000.jsonl       each dropped document with {"dropped": {"stage", "reason"}}
    OUT/held/00000.jsonl          documents held for human review, with {"held": {"stage", "reason"}}
    OUT/quarantine/00000.jsonl    malformed records with source file, line and error
    OUT/<stage>_<name>/00000.jsonl side outputs of a stage (e.g. the PII ledger)
    OUT/reports/                  <stage>.json (and plots), pipeline.json, summary.json/.html, manifest.json
    OUT/.fmaudit/                 job identity, per-shard statistics, completion markers

A shard's files are written under ``.fmaudit/tmp/`` and renamed into place; the sha256 of each (hashed as it
was written, ``.fmaudit/files/``), its statistics and then its completion marker are written last. A shard
without a marker is processed again from scratch, so a job killed at any point and started again ends with the
same files as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fmaudit.corpus import sha256_file, write_json_atomic, write_jsonl
from fmaudit.errors import UsageError
from fmaudit.pipeline.job_inputs import file_stamp


class JobLayout:
    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.state = self.out / ".fmaudit"
        self.reports = self.out / "reports"

    @staticmethod
    def shard_name(index: int) -> str:
        return f"{index:05d}"

    def marker(self, index: int) -> Path:
        return self.state / "done" / self.shard_name(index)

    def shard_stats(self, index: int) -> Path:
        return self.state / "shards" / f"{self.shard_name(index)}.json"

    def shard_hashes(self, index: int) -> Path:
        """The shard's output files as committed: ``{relative path: {sha256, bytes, mtime_ns, ctime_ns, inode}}``."""
        return self.state / "files" / f"{self.shard_name(index)}.json"

    @property
    def job_file(self) -> Path:
        return self.state / "job.json"

    @property
    def complete_marker(self) -> Path:
        return self.state / "complete"

    @property
    def lock_file(self) -> Path:
        return self.state / "lock"

    def check_out(self) -> None:
        """UsageError when the output folder is an existing file, lies below a file, or cannot be written."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out}: --out names an existing file; it must be a folder (new or empty, or this "
                             "job's)")
        for parent in out.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise UsageError(f"{out}: --out lies below {parent}, which is a file, not a folder")
                break
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            probe = self.state / f"probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UsageError(f"{out}: the output folder cannot be written ({e.strerror or e})") from None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ``.fmaudit/lock`` (an exclusive ``flock``, released when the holder exits, even by kill -9)
        while a job runs in this folder; a second job into it stops with UsageError naming the holder."""
        import fcntl

        self.check_out()
        f = open(self.lock_file, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise UsageError(f"{self.out} is in use by another fmaudit job ({holder}); wait for it to finish, "
                             "or choose another --out") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()

    def is_done(self, index: int) -> bool:
        return self.marker(index).exists()

    def prepare(self) -> None:
        for sub in ("done", "shards", "files"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.state / "tmp", ignore_errors=True)  # leftovers of a killed run

    def commit_shard(self, index: int, files: dict[str, list[dict]], stats: dict, suffix: str) -> None:
        """Write ``files`` ({folder: rows}) for shard ``index``, then its stats, then its marker.

        ``data`` is always written (possibly empty); other folders only when they have rows.
        """
        name = self.shard_name(index) + suffix
        tmp = self.state / "tmp" / f"{self.shard_name(index)}-{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        staged = {}
        for folder, rows in sorted(files.items()):
            if rows or folder == "data":
                staged[folder] = hashlib.sha256()
                write_jsonl(tmp / folder / name, rows, digest=staged[folder])
        hashes = {}
        for folder, digest in staged.items():
            (self.out / folder).mkdir(parents=True, exist_ok=True)
            os.replace(tmp / folder / name, self.out / folder / name)
            hashes[f"{folder}/{name}"] = {"sha256": digest.hexdigest(), **file_stamp(self.out / folder / name)}
        shutil.rmtree(tmp, ignore_errors=True)
        write_json_atomic(self.shard_hashes(index), hashes)
        write_json_atomic(self.shard_stats(index), stats)
        self.marker(index).write_text("")

    def load_shard_stats(self, index: int) -> dict:
        return json.loads(self.shard_stats(index).read_text(encoding="utf-8"))


class RunClock:
    """Wall time of every run of one job, so a resumed job reports what it cost in all and what its last run
    took, apart. Each run's elapsed time is saved in ``.fmaudit/runs.json`` as its shards commit (a run killed
    with kill -9 counts up to its last commit)."""

    def __init__(self, layout: JobLayout, t0: float):
        self.file = layout.state / "runs.json"
        self.t0 = t0
        self.earlier: list[float] = json.loads(self.file.read_text()) if self.file.exists() else []

    def tick(self, now: float) -> None:
        write_json_atomic(self.file, self.earlier + [round(now - self.t0, 6)])

    def timings(self, now: float) -> dict:
        """``wall_s`` (all runs), plus ``resumed_wall_s`` (this run) and ``earlier_runs_wall_s`` when the job
        was resumed."""
        this = now - self.t0
        self.tick(now)
        if not self.earlier:
            return {"wall_s": this}
        return {"wall_s": sum(self.earlier) + this, "resumed_wall_s": this, "earlier_runs_wall_s": sum(self.earlier),
                "runs": len(self.earlier) + 1}


def write_manifest(layout: JobLayout, n_shards: int = 0) -> dict:
    """``reports/manifest.json``: every output file of the job with its size and sha256, so a trained
    checkpoint can be traced to the exact data it was trained on. The hashes of the first ``n_shards`` shards'
    files, taken as they were written, are used where the file's size, times and inode are still those of the
    commit; any other file is read and hashed."""
    known: dict[str, dict] = {}
    for index in range(n_shards):
        path = layout.shard_hashes(index)
        if path.exists():
            known.update(json.loads(path.read_text(encoding="utf-8")))
    files = []
    for folder in sorted(p for p in layout.out.iterdir() if p.is_dir() and p.name not in (".fmaudit", "reports")):
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                rel, stamp = f.relative_to(layout.out).as_posix(), file_stamp(f)
                entry = known.get(rel)
                fresh = entry is not None and all(entry.get(k) == v for k, v in stamp.items())
                files.append({"path": rel, "bytes": stamp["bytes"],
                              "sha256": entry["sha256"] if fresh else sha256_file(f)})
    manifest = {"files": files}
    write_json_atomic(layout.reports / "manifest.json", manifest)
    return manifest
