"""What the signature pass commits per shard, and reading it back in the global step.

One folder per shard, written under a temporary name and renamed into place (atomic), so a killed
signature pass leaves either a whole shard or nothing::

    <root>/00000/ids.json        the shard's document ids, in input order
    <root>/00000/<array>.npy     per-document arrays: keys (n, k) uint64 bucket keys (band keys, or the
                                 exact digest), lengths, id_hash; near dedup adds sig (n, num_perm) uint32,
                                 shingles (concatenated sorted sets, uint32) and offsets
"""

from __future__ import annotations

import json
import os
import shutil
from functools import cached_property
from pathlib import Path

import numpy as np


def shard_dir(root: Path, index: int) -> Path:
    return Path(root) / f"{index:05d}"


def write_shard(root: str | os.PathLike, index: int, ids: list[str], arrays: dict[str, np.ndarray]) -> None:
    """Commit one shard's signature data (replacing a partial folder left by a killed run)."""
    final = shard_dir(Path(root), index)
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
    for name, arr in sorted(arrays.items()):
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


class ShardData:
    """One committed shard, its arrays memory-mapped (read only when touched)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        return self._arrays[name]

    @cached_property
    def ids(self) -> list[str]:
        return json.loads((self.folder / "ids.json").read_text(encoding="utf-8"))

    @cached_property
    def n(self) -> int:
        return int(self.array("lengths").shape[0])

    @cached_property
    def _sets(self) -> tuple[np.ndarray, np.ndarray]:
        return self.array("shingles"), np.asarray(self.array("offsets"))

    def shingle_set(self, pos: int) -> np.ndarray:
        shingles, offsets = self._sets
        return np.asarray(shingles[offsets[pos]:offsets[pos + 1]])


class SignatureStore:
    """The shards ``0 .. n_shards-1`` under ``root``; documents numbered densely in input order."""

    def __init__(self, root: str | os.PathLike, n_shards: int):
        self.root = Path(root)
        self.shards = [ShardData(shard_dir(self.root, i)) for i in range(n_shards)]
        sizes = np.array([s.n for s in self.shards], dtype=np.int64)
        self.base = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)

    @property
    def n_docs(self) -> int:
        return int(self.base[-1])

    def locate(self, doc: int) -> tuple[int, int]:
        """(shard, position in shard) of dense document number ``doc``."""
        shard = int(np.searchsorted(self.base, doc, side="right") - 1)
        return shard, int(doc - self.base[shard])

    def gather(self, name: str) -> np.ndarray:
        """A per-document 1-D array over the whole corpus (8 bytes a document: lengths, id hashes)."""
        return np.concatenate([np.asarray(s.array(name)) for s in self.shards]) if self.shards else np.zeros(0)

    def doc_id(self, doc: int) -> str:
        shard, pos = self.locate(doc)
        return self.shards[shard].ids[pos]

    def shingle_set(self, doc: int) -> np.ndarray:
        shard, pos = self.locate(doc)
        return self.shards[shard].shingle_set(pos)

    def signature(self, doc: int) -> np.ndarray:
        shard, pos = self.locate(doc)
        return np.asarray(self.shards[shard].array("sig")[pos])
