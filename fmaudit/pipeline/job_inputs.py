"""What a filter job records about its inputs (``.fmaudit/inputs.json``): path, sha256, size and file stamps.

An input is hashed once per job, as the reader consumes it (:class:`fmaudit.corpus.ReadDigest`), not read a
second time beforehand: a new job records ``sha256: null`` at its start, and the digest of the bytes read once the
file has been read, provided the file's size, times and inode are still those of the start (else the input
changed while the job read it: an InputError, and the job is not marked complete). A file whose stamps match what
the job folder recorded is not hashed again, so resuming or re-running a job does not re-read it first; a file
whose stamps changed is hashed before any work, and a job whose inputs' hashes changed is a different job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from fmaudit.corpus import sha256_file, write_json_atomic
from fmaudit.errors import InputError

INPUTS_CACHE = "inputs.json"
STAMP_KEYS = ("bytes", "mtime_ns", "ctime_ns", "inode")  # ctime: an edit with mtime restored still shows


def file_stamp(path: Path) -> dict:
    """What changes when a file is written again: its size, times and inode."""
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


def input_info(files: list[Path], state: Path, new_job: bool) -> list[dict]:
    """Path, sha256, size and stamps of each input; ``state`` is the job's ``.fmaudit`` folder. In a ``new_job``
    a file not seen before gets ``sha256: None`` (hashed as read, :func:`settle_hashes`)."""
    cache_file = state / INPUTS_CACHE
    cache = {c["path"]: c for c in json.loads(cache_file.read_text())} if cache_file.exists() else {}
    info = []
    for p in files:
        stamp = file_stamp(p)
        known = cache.get(str(p))
        if known and all(known.get(k) == stamp[k] for k in STAMP_KEYS):
            sha = known["sha256"]  # None: an interrupted new job had not finished reading it
        else:
            sha = None if new_job else sha256_file(p)
        info.append({"path": str(p), "sha256": sha, **stamp})
    return info


def record_inputs(state: Path, info: list[dict]) -> None:
    write_json_atomic(state / INPUTS_CACHE, info)


def settle_hashes(info: list[dict], read: dict[str, Optional[str]]) -> bool:
    """Record, for each input still without a sha256, the digest of the bytes the reader consumed (``read``, by
    path; hashed again from disk where the reader could not read it to its end). InputError if the file's stamps
    changed since the job started. Returns whether anything was recorded."""
    settled = False
    for entry in info:
        if entry["sha256"] is not None:
            continue
        path = Path(entry["path"])
        if any(file_stamp(path)[k] != entry[k] for k in STAMP_KEYS):
            raise InputError(f"{path}: input changed while the job read it (its size, times or inode differ from "
                             "when the job started); what was read is not what the job recorded, so it is not "
                             "marked complete: restore the input, or start over with a new --out")
        entry["sha256"] = read.get(str(path)) or sha256_file(path)
        settled = True
    return settled
