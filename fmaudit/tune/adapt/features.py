"""Features of a downstream task: the checkpoint's pooled hidden states, batched and cached on disk.

A text's feature vector is the mean (or the last real token) of one layer's hidden states over its real
tokens. Texts are sorted by length and right-padded per batch (a causal model's real tokens never attend to
the padding on their right, so a batch gives the same vectors as one text at a time). The cache folder is keyed
by the checkpoint's sha256 (:func:`fmaudit.core.checkpoint.checkpoint_sha256`) and the extraction settings; in it each vector is stored under its text's sha256,
so a second run (or another task sharing texts) computes only the texts it has not seen.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from fmaudit.core.checkpoint import checkpoint_sha256
from fmaudit.tune.adapt.settings import FeatureSettings


@contextmanager
def cpu_threads(n: Optional[int]):
    """Limit torch's and the BLAS libraries' threads to ``n`` inside the block (None: leave them)."""
    if n is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class FeatureCache:
    """Vectors by text sha256 in ``folder``: one ``.npz`` shard per run that added texts, written atomically."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as z:
                    self._vectors.update(zip(z["keys"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError):
                continue  # a damaged shard is only a cache miss: its texts are computed again

    def get(self, key: str) -> Optional[np.ndarray]:
        return self._vectors.get(key)

    def add(self, vectors: dict[str, np.ndarray], meta: dict) -> None:
        if not vectors:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        keys = sorted(vectors)
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        tmp = self.folder / f".{name}.tmp.npz"
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([vectors[k] for k in keys]).astype(np.float32))
        os.replace(tmp, self.folder / f"{name}.npz")
        self._vectors.update(vectors)


def cache_folder(root: str | os.PathLike, ckpt_sha: str, settings: FeatureSettings,
                 tuned_sha: Optional[str] = None) -> Path:
    """``root/<key>``: the key covers the checkpoint, the fine-tuned tensors replacing some of its own (their
    sha256, when the encoder was fine-tuned) and every setting that changes a vector."""
    spec = {"checkpoint": ckpt_sha, "layer": settings.layer, "pooling": settings.pooling,
            "max_length": settings.max_length, **({"finetuned": tuned_sha} if tuned_sha else {})}
    return Path(root) / hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def encode(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, with the tokenizer's special tokens (BOS), truncated to ``max_length``."""
    return [tokenizer(t, add_special_tokens=True)["input_ids"][:max_length] for t in texts]


def padded_batch(ids: list[list[int]], chunk: Sequence[int], pad_id: int):
    """``(input_ids, attention_mask)`` long tensors of the texts ``chunk`` indexes, right-padded to the longest."""
    import torch

    width = max(len(ids[i]) for i in chunk)
    input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(chunk), width), dtype=torch.long)
    for row, i in enumerate(chunk):
        input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
        mask[row, :len(ids[i])] = 1
    return input_ids, mask


def pool(model, input_ids, mask, settings: FeatureSettings):
    """(batch, hidden) float pooled hidden states of one padded batch (with autograd where it is enabled)."""
    import torch

    device = next(model.parameters()).device
    mask = mask.to(device)
    hidden = model.base_model(input_ids=input_ids.to(device), attention_mask=mask,
                              output_hidden_states=True).hidden_states[settings.layer].float()
    if settings.pooling == "mean":
        m = mask.unsqueeze(-1).float()
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    return hidden[torch.arange(len(input_ids), device=device), mask.sum(1) - 1]


def pooled_states(model, ids: list[list[int]], settings: FeatureSettings, pad_id: int, batch_size: int) -> np.ndarray:
    """(n, hidden) float32 pooled hidden states of token-id lists, ``batch_size`` at a time, longest first."""
    import torch

    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = pool(model, *padded_batch(ids, chunk, pad_id), settings).cpu().numpy()
    return out


def extract_features(checkpoint: str | os.PathLike, texts: Sequence[str], settings: FeatureSettings,
                     cache_root: Optional[str | os.PathLike] = None, model=None, tokenizer=None,
                     device=None, tuned_sha: Optional[str] = None) -> tuple[np.ndarray, dict]:
    """(n, hidden) float64 features of ``texts`` and a summary (cache hits, texts computed, checkpoint sha256).

    The model is loaded (safely, :func:`fmaudit.core.checkpoint.load_checkpoint`) only when some text is not
    in the cache; pass ``model``/``tokenizer`` to reuse loaded ones. A fine-tuned encoder
    (:mod:`fmaudit.tune.adapt.finetune`) is passed as ``model`` with ``tuned_sha``, the sha256 of its tuned
    tensors, which keys its own cache.
    """
    if tuned_sha is not None and model is None:
        raise ValueError("a fine-tuned encoder (tuned_sha) must be passed as model")
    ckpt_sha = checkpoint_sha256(checkpoint)
    keys = [text_sha256(t) for t in texts]
    cache = (FeatureCache(cache_folder(cache_root, ckpt_sha, settings, tuned_sha)) if cache_root is not None
             else None)
    found = {k: v for k in set(keys) if cache is not None and (v := cache.get(k)) is not None}
    missing = sorted({k: i for i, k in enumerate(keys) if k not in found}.items())
    computed: dict[str, np.ndarray] = {}
    if missing:
        if model is None:
            from fmaudit.core.checkpoint import load_checkpoint

            model, tokenizer = load_checkpoint(checkpoint, device=device)
        from fmaudit.core.evaluate import _pad_id

        ids = encode(tokenizer, [texts[i] for _, i in missing], settings.max_length)
        vectors = pooled_states(model, ids, settings, _pad_id(tokenizer), settings.batch_size)
        computed = {k: v for (k, _), v in zip(missing, vectors)}
        if cache is not None:
            cache.add(computed, {"checkpoint": str(checkpoint), "checkpoint_sha256": ckpt_sha,
                                 **({"finetuned": tuned_sha} if tuned_sha else {}),
                                 **settings.model_dump(exclude={"cache_dir", "batch_size"})})
    table = {**found, **computed}
    X = np.stack([table[k] for k in keys]).astype(np.float64)  # float64: fairlearn + pandas 3 reject float32
    return X, {"checkpoint_sha256": ckpt_sha, "texts": len(texts), "unique_texts": len(table),
               "cache_hits": len(found), "computed": len(computed), "dim": int(X.shape[1]),
               "cache": str(cache.folder) if cache is not None else None}
