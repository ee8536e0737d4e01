"""Training data: a filtered corpus tokenized once into flat token files, cut into fixed-length sequences.

    RUN/tokens/train.bin   <|bos|> doc <|eos|> <|bos|> doc <|eos|> ...  (uint16, or uint32 for vocabularies > 65535)
    RUN/tokens/val.bin     the held-out documents, chosen by a hash of their id
    RUN/tokens/meta.json   what was tokenized (data files, tokenizer) and the counts

Documents are streamed in batches; the token files are read through memory maps. The order of training
sequences is a seeded permutation per epoch, a pure function of the sample counter: the data position of
a run is one integer, and any process of a distributed run finds its own sequences from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from fmaudit.core import canaries as canary_lib
from fmaudit.corpus import expand_inputs, id_hash64, read_documents
from fmaudit.errors import InputError

ENCODE_BATCH = 256


def is_held_out(doc_id: str, fraction: float) -> bool:
    """Deterministic held-out split by document id (stable across runs, shards and process counts)."""
    return id_hash64(doc_id) / 2**64 < fraction


def data_folder(path: str | os.PathLike) -> Path:
    """A filter job's ``data/`` folder, given the job folder or the data folder itself."""
    path = Path(path)
    if (path / "data").is_dir():
        path = path / "data"
    if not path.is_dir():
        raise InputError(f"{path}: no such data folder")
    if not (path.parent / ".fmaudit" / "job.json").is_file() or path.name != "data":
        logging.getLogger("fmaudit.core").warning(
            "%s is not the output of `fmaudit filter` (no .fmaudit/job.json beside it): its documents were not "
            "anonymized, filtered or audited by a policy, and the run's lineage will not name their reports", path)
    return path


def tokenize_corpus(data_dir: str | os.PathLike, tokenizer, out_dir: str | os.PathLike, holdout_fraction: float,
                    canaries: canary_lib.CanarySettings | None = None) -> dict:
    """Tokenize the documents of ``data_dir`` into ``out_dir/{train,val}.bin`` (reused when already there
    for the same data files, by name, size and modification time, and the same tokenizer). With
    ``canaries``, the canaries are planted in the training split and recorded in ``out_dir/canaries.json``.
    Returns the metadata."""
    data = data_folder(data_dir)
    out = Path(out_dir)
    files = expand_inputs([data])
    identity = {
        "data": [{"path": str(f), "bytes": f.stat().st_size, "mtime_ns": f.stat().st_mtime_ns} for f in files],
        "tokenizer": hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest(),
        "holdout_fraction": holdout_fraction,
    }
    if canaries is not None:
        identity["canaries"] = canary_lib.identity(canaries)
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["identity"] == identity:
            return meta
    out.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if len(tokenizer) <= 65535 else np.uint32
    counts = {"train": [0, 0], "val": [0, 0]}  # documents, tokens
    with open(out / "train.bin.tmp", "wb") as ftrain, open(out / "val.bin.tmp", "wb") as fval:
        docs_in = read_documents(files)
        if canaries is not None:  # one extra reading pass counts the documents, to spread the copies over them
            docs_in = canary_lib.plant(docs_in, sum(1 for _ in read_documents(files)), canaries,
                                       lambda doc_id: is_held_out(doc_id, holdout_fraction))
        for docs in _batches(docs_in, ENCODE_BATCH):
            ids = tokenizer([d.text for d in docs], add_special_tokens=True)["input_ids"]
            for doc, tokens in zip(docs, ids):
                split = "val" if is_held_out(doc.id, holdout_fraction) else "train"
                arr = np.asarray(tokens + [tokenizer.eos_token_id], dtype=dtype)
                arr.tofile(fval if split == "val" else ftrain)
                counts[split][0] += 1
                counts[split][1] += arr.size
    if canaries is not None:
        canary_lib.write_record(out, canaries)
    for split in ("train", "val"):
        os.replace(out / f"{split}.bin.tmp", out / f"{split}.bin")
    meta = {"identity": identity, "dtype": np.dtype(dtype).name, "vocab_size": len(tokenizer),
            "documents": {k: v[0] for k, v in counts.items()}, "tokens": {k: v[1] for k, v in counts.items()}}
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)
    return meta


def _batches(items, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class PackedSequences:
    """Fixed-length sequences of a token file: sequence ``k`` is tokens ``[k*L, (k+1)*L)``."""

    def __init__(self, path: str | os.PathLike, seq_len: int, dtype: str):
        self.path = Path(path)
        self.seq_len = seq_len
        self.tokens = np.memmap(self.path, dtype=dtype, mode="r") if self.path.stat().st_size else np.zeros(0, dtype)
        self.n = len(self.tokens) // seq_len

    def __len__(self) -> int:
        return self.n

    def get(self, indices) -> np.ndarray:
        """A (len(indices), seq_len) int64 array of the sequences at ``indices``."""
        rows = [self.tokens[k * self.seq_len:(k + 1) * self.seq_len] for k in indices]
        return np.stack(rows).astype(np.int64)


class SampleOrder:
    """Which sequence the i-th training sample is: a fresh seeded permutation of all sequences each epoch."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self._epoch, self._perm = -1, None

    def __call__(self, sample: int) -> int:
        epoch, offset = divmod(sample, self.n)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._epoch, self._perm = epoch, rng.permutation(self.n)
        return int(self._perm[offset])

    def epoch(self, sample: int) -> float:
        return sample / self.n
