"""The runner's side of global stages (:mod:`fmaudit.stages.global_stage`): the sign pass's commit, the
decide step, and each shard's decisions for the apply pass.

    .fmaudit/global/signed/00000            marker: shard 0 is signed for every global stage
    .fmaudit/global/<stage>/sig/00000/      the shard's arrays (fmaudit.dedup.store)
    .fmaudit/global/<stage>/work/           scratch of the decide step (spilled buckets), removed after it
    .fmaudit/global/<stage>/decisions/00000.json   document id -> facts, for shards that have any
    .fmaudit/global/<stage>/dropped.npy     dense numbers of the documents it drops (next stage's ``excluded``)
    .fmaudit/global/<stage>/summary.json    figures for the report
    .fmaudit/global/<stage>/decided         marker, written last

    .fmaudit/global/pending/00000.json      with stages before the global ones: the shard's work after them

Once the job is complete, the signatures and pending shards are removed (the decisions stay).
A decide step killed before its marker is run again from scratch; its output depends only on the committed
signatures, so the rerun writes the same bytes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from fmaudit.corpus import Document, write_json_atomic
from fmaudit.errors import PolicyError
from fmaudit.stages.global_stage import GlobalOrderError, GlobalStage, global_dir
from fmaudit.stages.global_stage import global_block as stage_global_block

if TYPE_CHECKING:  # numpy and the signature store load only for jobs with a global stage
    import numpy as np


def global_block(names: list[str], policy_path=None) -> tuple[int, list[str]]:
    """:func:`fmaudit.stages.global_stage.global_block`, as a policy error naming the policy."""
    try:
        return stage_global_block(names)
    except GlobalOrderError as e:
        raise PolicyError(f"{policy_path or 'policy'}: {e}") from None


def signed_marker(out: Path, index: int) -> Path:
    return Path(out) / ".fmaudit" / "global" / "signed" / f"{index:05d}"


def pending_path(out: Path, index: int) -> Path:
    return Path(out) / ".fmaudit" / "global" / "pending" / f"{index:05d}.json"


def commit_signatures(out: Path, stages: list[GlobalStage], index: int, docs: list[Document],
                      pending: Optional[dict] = None) -> None:
    """Sign one shard for every global stage, then mark it signed. ``pending``: the shard's work after the
    stages before the global ones (rows so far, statistics, the documents going on), which the apply pass
    continues from instead of running those stages again."""
    from fmaudit.dedup.store import write_shard

    if pending is not None:
        write_json_atomic(pending_path(out, index), pending)
    ids = [d.id for d in docs]
    for stage in stages:
        write_shard(global_dir(out, stage.name) / "sig", index, ids, stage.sign(docs))
    marker = signed_marker(out, index)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("")


def load_pending(out: Path, index: int) -> Optional[dict]:
    path = pending_path(out, index)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def decide_all(out: Path, stages: list[GlobalStage], n_shards: int) -> None:
    """Run the decide step of each global stage in order (skipping those already decided)."""
    import numpy as np

    excluded: Optional[np.ndarray] = None
    for stage in stages:
        folder = global_dir(out, stage.name)
        if not (folder / "decided").exists():
            _decide(stage, folder, n_shards, excluded)
        dropped = np.load(folder / "dropped.npy")
        if excluded is None:
            n_docs = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["documents"]
            excluded = np.zeros(n_docs, dtype=bool)
        excluded[dropped] = True


def _decide(stage: GlobalStage, folder: Path, n_shards: int, excluded: Optional[np.ndarray]) -> None:
    import numpy as np

    for leftover in ("decisions", "work"):  # of a killed decide step
        shutil.rmtree(folder / leftover, ignore_errors=True)
    (folder / "decisions").mkdir(parents=True)
    decisions = stage.decide(folder / "sig", n_shards, folder / "work", excluded)
    shutil.rmtree(folder / "work", ignore_errors=True)
    for shard, facts in sorted(decisions.drops.items()):
        write_json_atomic(folder / "decisions" / f"{shard:05d}.json", dict(sorted(facts.items())))
    np.save(folder / "dropped.npy", np.sort(decisions.dropped_docs).astype(np.int64), allow_pickle=False)
    write_json_atomic(folder / "summary.json", decisions.summary)
    (folder / "decided").write_text(str(n_shards))


def remove_global_scratch(out: Path, names: list[str]) -> None:
    """After a completed job: remove what only the passes needed (signatures, shingle sets, pending shards;
    about the size of the corpus), keeping the decisions and summaries."""
    shutil.rmtree(Path(out) / ".fmaudit" / "global" / "pending", ignore_errors=True)
    for name in names:
        shutil.rmtree(global_dir(out, name) / "sig", ignore_errors=True)


def shard_decisions(out: Path, names: list[str], index: int) -> dict[str, dict]:
    """Stage name -> this shard's decisions (document id -> facts), for the apply pass."""
    found = {}
    for name in names:
        path = global_dir(out, name) / "decisions" / f"{index:05d}.json"
        found[name] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return found
