"""Where the training loop's samples come from, and the loss on them: one class per kind of data.

A source holds ``len(source)`` training samples; sample ``k`` is a pure function of ``k``, so the loop's data
position stays one integer (exact resume, and each process of a distributed run finds its own samples).

- :class:`PackedSource`: packed pre-training documents (fixed-length token sequences, next-token loss on all).
- :class:`PairSource`: prompt/response pairs; the loss covers the response tokens only (labels are -100 on
  the prompt and the padding), for supervised fine-tuning.
- :class:`PreferenceSource`: (prompt, chosen, rejected) triples and the DPO loss (Rafailov et al. 2023)
  against the log-probabilities of the reference model, computed once from the initial weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from fmaudit.core import chat
from fmaudit.core.chat import IGNORE, Encoded
from fmaudit.core.data import PackedSequences


class DataSource(ABC):
    """Training samples, held-out samples, and the loss the loop minimises on them."""

    kind: str

    @abstractmethod
    def __len__(self) -> int:
        """Training samples per epoch."""

    @abstractmethod
    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The training samples at ``indices`` as model inputs (``tokens``: real tokens in the batch)."""

    @abstractmethod
    def val_batches(self, rank: int, world: int, micro_batch: int, max_samples: int) -> list[dict]:
        """This process's share of the held-out samples (at most ``max_samples`` over all processes)."""

    def loss(self, model, batch: dict) -> torch.Tensor:
        """Mean next-token loss over the tokens whose label is not -100."""
        return model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                     labels=batch["labels"]).loss

    @torch.no_grad()
    def val_terms(self, model, batch: dict) -> tuple[float, int]:
        """(summed loss, count) of a held-out batch; the loop reports sum / count over all batches."""
        n = int((batch["labels"][:, 1:] != IGNORE).sum())
        return float(self.loss(model, batch).float()) * n, n

    def describe(self) -> dict:
        return {"kind": self.kind, "train_samples": len(self)}


class PackedSource(DataSource):
    """Fixed-length sequences of the tokenized corpus (``RUN/tokens/{train,val}.bin``); no padding."""

    kind = "packed"

    def __init__(self, tokens_dir: Path, seq_len: int, dtype: str):
        self.train = PackedSequences(tokens_dir / "train.bin", seq_len, dtype)
        self.val = PackedSequences(tokens_dir / "val.bin", seq_len, dtype)

    def __len__(self) -> int:
        return len(self.train)

    def batch(self, indices):
        ids = torch.from_numpy(self.train.get(indices))
        return {"input_ids": ids, "labels": ids, "tokens": ids.numel()}

    def val_count(self, max_samples: int) -> int:
        return min(max_samples, len(self.val))

    def val_batches(self, rank, world, micro_batch, max_samples):
        per_rank = self.val_count(max_samples) // world
        idx = range(rank * per_rank, (rank + 1) * per_rank)
        out = []
        for i in range(0, len(idx), micro_batch):
            ids = torch.from_numpy(self.val.get(idx[i:i + micro_batch]))
            out.append({"input_ids": ids, "labels": ids})
        return out

    def loss(self, model, batch):
        return model(input_ids=batch["input_ids"], labels=batch["labels"]).loss


def _pad(rows: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r.ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r.ids)] = torch.tensor(r.ids)
        labels[i, :len(r.labels)] = torch.tensor(r.labels)
        mask[i, :len(r.ids)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "tokens": int(mask.sum())}


class PairSource(DataSource):
    """Prompt/response pairs for supervised fine-tuning, formatted with the tokenizer's chat template; the loss
    covers the response tokens (and the end-of-sequence token) only. Batches are padded on the right."""

    kind = "pairs"

    def __init__(self, tokenizer, train: Sequence[tuple[str, str]], val: Sequence[tuple[str, str]], max_len: int):
        self.pad_id = chat.pad_id(tokenizer)
        self.train = [chat.encode_pair(tokenizer, p, r, max_len) for p, r in train]
        self.val = [chat.encode_pair(tokenizer, p, r, max_len) for p, r in val]

    def __len__(self) -> int:
        return len(self.train)

    def batch(self, indices):
        return _pad([self.train[k] for k in indices], self.pad_id)

    def val_batches(self, rank, world, micro_batch, max_samples):
        per_rank = min(max_samples, len(self.val)) // world
        rows = self.val[rank * per_rank:(rank + 1) * per_rank]
        return [_pad(rows[i:i + micro_batch], self.pad_id) for i in range(0, len(rows), micro_batch)]

    def describe(self):
        return {**super().describe(), "val_samples": len(self.val),
                "response_tokens": sum(sum(1 for x in r.labels if x != IGNORE) for r in self.train)}


def sequence_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed log-probability of the tokens whose label is not -100, and their number."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    picked = torch.gather(F.log_softmax(logits, dim=-1), 2, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(-1), keep.sum(-1)


class PreferenceSource(DataSource):
    """(prompt, chosen, rejected) triples and the DPO loss
    ``-log sigmoid(beta * ((log pi(c) - log ref(c)) - (log pi(r) - log ref(r))))``, plus ``rpo_alpha`` times
    the per-token negative log-likelihood of the chosen response (RPO, Pang et al. 2024; TRL's ``rpo_alpha``):
    DPO alone can satisfy its margin by pushing the rejected response down while the chosen one falls too, so a
    model that never produced the chosen kind of answer still does not produce it; 0 gives plain DPO.

    Call :meth:`prepare` with the initial model before training: it computes the reference log-probabilities
    once (no second model kept in memory), deterministically, so a resumed run uses the same ones."""

    kind = "preferences"

    def __init__(self, tokenizer, train: Sequence[tuple[str, str, str]], val: Sequence[tuple[str, str, str]],
                 max_len: int, beta: float, rpo_alpha: float = 0.0):
        self.pad_id, self.beta, self.rpo_alpha = chat.pad_id(tokenizer), beta, rpo_alpha

        def enc(triples):
            return [(chat.encode_pair(tokenizer, p, c, max_len), chat.encode_pair(tokenizer, p, r, max_len))
                    for p, c, r in triples]
        self.train, self.val = enc(train), enc(val)
        self.ref_train: Optional[np.ndarray] = None
        self.ref_val: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.train)

    @torch.no_grad()
    def prepare(self, model, micro_batch: int = 16) -> None:
        """Reference log-probabilities (chosen, rejected) of every triple under ``model``."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device

        def ref(pairs):
            out = []
            for i in range(0, len(pairs), micro_batch):
                b = self._pair_batch(pairs[i:i + micro_batch], None)
                lp, _ = sequence_logps(model, {k: v.to(device) for k, v in b.items() if torch.is_tensor(v)})
                out.append(lp.view(2, -1).T.cpu().double().numpy())
            return np.concatenate(out) if out else np.zeros((0, 2))
        self.ref_train, self.ref_val = ref(self.train), ref(self.val)
        model.train(was_training)

    def _pair_batch(self, pairs, ref: Optional[np.ndarray]) -> dict:
        b = _pad([c for c, _ in pairs] + [r for _, r in pairs], self.pad_id)
        if ref is not None:
            b["ref"] = torch.from_numpy(ref).float()
        return b

    def batch(self, indices):
        if self.ref_train is None:
            raise RuntimeError("PreferenceSource.prepare(model) must run before training")
        return self._pair_batch([self.train[k] for k in indices], self.ref_train[list(indices)])

    def val_batches(self, rank, world, micro_batch, max_samples):
        per_rank = min(max_samples, len(self.val)) // world
        lo = rank * per_rank
        return [self._pair_batch(self.val[lo + i:lo + min(i + micro_batch, per_rank)],
                                 self.ref_val[lo + i:lo + min(i + micro_batch, per_rank)])
                for i in range(0, per_rank, micro_batch)]

    def _losses(self, model, batch) -> torch.Tensor:
        lp, count = sequence_logps(model, batch)
        n = lp.shape[0] // 2
        ref = batch["ref"].to(lp.device)
        margin = (lp[:n] - ref[:, 0]) - (lp[n:] - ref[:, 1])
        losses = -F.logsigmoid(self.beta * margin)
        if self.rpo_alpha:
            losses = losses - self.rpo_alpha * lp[:n] / count[:n].clamp_min(1)
        return losses

    def loss(self, model, batch):
        return self._losses(model, batch).mean()

    @torch.no_grad()
    def val_terms(self, model, batch):
        losses = self._losses(model, batch)
        return float(losses.sum()), int(losses.numel())

    def describe(self):
        return {**super().describe(), "val_samples": len(self.val), "beta": self.beta, "rpo_alpha": self.rpo_alpha}
