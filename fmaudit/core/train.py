"""Training entry points over the shared loop (:mod:`fmaudit.core.loop`):

- :func:`train`: pre-training on the next-token objective over packed documents, from random initialisation
  or from a checkpoint (``train.init_from``);
- :func:`fine_tune`: any local transformers causal-LM folder trained on any
  :class:`~fmaudit.core.sources.DataSource` (prompt/response pairs, preference triples...), for model stages.

    RUN/tokens/                 the corpus tokenized once (see fmaudit.core.data)
    RUN/checkpoints/step-N/     save_pretrained (safetensors) + tokenizer + trainer_state.pt
    RUN/model/                  the final model and tokenizer (a plain transformers folder)
    RUN/metrics.jsonl           one row per log interval (train) and per evaluation (val)
    RUN/reports/train.json      pre-training's report (kind ``training``), with train_loss.png beside it

Run either again with the same ``out`` and it resumes from the newest checkpoint: same weights, optimizer,
scheduler, data position and RNG, so the loss curve continues exactly as if never interrupted. Under
``torchrun`` each process takes its share of every global batch (DDP, or FSDP for large models).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from fmaudit.core import checkpoint as ckpt
from fmaudit.core.config import TrainSettings
from fmaudit.core.data import tokenize_corpus
from fmaudit.core.distributed import Dist, setup, teardown
from fmaudit.core.evaluate import context_length
from fmaudit.core.loop import LoopState, Trainer, make_trainer, run_loop
from fmaudit.core.model import build_config, build_model
from fmaudit.core.sources import DataSource, PackedSource
from fmaudit.core.tokenizer import load_tokenizer
from fmaudit.errors import InputError


@dataclass
class TrainResult:
    run_dir: Path
    model_dir: Optional[Path]  # None when the run stopped before its last step
    steps: int
    tokens_seen: int
    initial_val_loss: Optional[float]
    final_val_loss: Optional[float]
    tokens_per_s: Optional[float]
    report: Optional[dict]

    @property
    def completed(self) -> bool:
        return self.model_dir is not None


def train(settings: TrainSettings, data_dir, tokenizer_dir, out, *, policy=None, stop_after: Optional[int] = None,
          progress: bool = True, device: Optional[str] = None) -> TrainResult:
    """Pre-train on the filtered corpus ``data_dir`` (random init, or ``settings.init_from``'s weights).

    ``tokenizer_dir`` may be None when ``settings.init_from`` is set (the checkpoint's tokenizer is used).
    ``policy`` (optional) is recorded in the report. ``stop_after`` ends the run after that optimizer step (a
    checkpoint is written there): calling again resumes it.
    """
    if not isinstance(settings, TrainSettings):
        raise TypeError("settings must be TrainSettings (a policy's train: section)")
    t_start, started_at = time.time(), _now()
    run, data_dir = Path(out), Path(data_dir)
    with session(settings, device) as d:
        model, tokenizer, init = init_model(settings, tokenizer_dir, d)
        if d.main:
            tokenize_corpus(data_dir, tokenizer, run / "tokens", settings.holdout_fraction,
                            canaries=settings.canaries)
        d.barrier()
        meta = json.loads((run / "tokens" / "meta.json").read_text())
        source = PackedSource(run / "tokens", settings.seq_len, meta["dtype"])
        if len(source) == 0:
            raise InputError(f"{data_dir}: fewer than seq_len={settings.seq_len} training tokens")
        if source.val_count(settings.eval_batches * settings.micro_batch) // d.world == 0:
            raise InputError(f"{data_dir}: the held-out documents ({meta['tokens']['val']} tokens) make fewer "
                             f"sequences of {settings.seq_len} tokens than processes; raise holdout_fraction")
        identity = {"settings": json.loads(settings.model_dump_json()), "init": init}
        t, state = make_trainer(settings, run, d, source, model, tokenizer, identity, stop_after)
        state = run_loop(t, state, progress)
        result = _result(t, state)
        if result.completed:
            if d.main:
                from fmaudit.core.report import write_train_report

                result.report = write_train_report(
                    run, settings, policy, model.config, sum(p.numel() for p in model.parameters()), meta,
                    data_dir, Path(tokenizer_dir or settings.init_from), result, d, started_at=started_at,
                    wall_s=time.time() - t_start)
            d.barrier()
        return result


def fine_tune(settings: TrainSettings, out, make_source: Callable[[object, object], DataSource], *,
              identity: Optional[dict] = None, stop_after: Optional[int] = None, progress: bool = True,
              device: Optional[str] = None, wrap_model: Optional[Callable[[object], object]] = None) -> TrainResult:
    """Train ``settings.init_from`` (a causal-LM folder) on ``make_source(tokenizer, model)``; the final model
    lands in ``out/model``. ``identity`` adds what else defines the run (its data), checked on resume.
    ``make_source`` sees the initial weights (a preference source computes its reference log-probabilities
    from them), before any checkpoint of ``out`` is loaded.

    ``wrap_model(model) -> model`` (optional) replaces the loaded model after ``make_source`` and before the
    optimizer is made, e.g. :func:`fmaudit.tune.lora.adapter_wrapper` (frozen base, trainable adapters; the
    checkpoints then hold the adapters only and ``out/model`` is an adapter folder).
    """
    if settings.init_from is None:
        raise InputError("fine_tune needs train.init_from (the checkpoint to start from)")
    run = Path(out)
    with session(settings, device) as d:
        model, tokenizer, init = init_model(settings, None, d)
        limit = context_length(model, tokenizer)
        if settings.seq_len > limit:
            raise InputError(f"{settings.init_from}: the model's context is {limit} tokens, less than "
                             f"train.seq_len={settings.seq_len}")
        source = make_source(tokenizer, model)
        if wrap_model is not None:
            model = wrap_model(model)
        if len(source) == 0:
            raise InputError(f"{run}: no training samples")
        ident = {"settings": json.loads(settings.model_dump_json()), "init": init, "data": identity or {}}
        t, state = make_trainer(settings, run, d, source, model, tokenizer, ident, stop_after)
        state = run_loop(t, state, progress)
        return _result(t, state)


@contextlib.contextmanager
def session(settings: TrainSettings, device: Optional[str]) -> Iterator[Dist]:
    """The process group and per-run torch settings (threads, no transformers progress bars), undone after."""
    from transformers.utils import logging as hf_logging

    d = setup(device)
    threads = torch.get_num_threads()
    if d.device.type == "cpu" and settings.cpu_threads:
        torch.set_num_threads(settings.cpu_threads)
    hf_logging.disable_progress_bar()  # save_pretrained's per-checkpoint bar would break the training bar
    try:
        yield d
    finally:
        torch.set_num_threads(threads)
        hf_logging.enable_progress_bar()
        teardown(d)


def init_model(settings: TrainSettings, tokenizer_dir, d: Dist):
    """``(model, tokenizer, init)``: ``settings.init_from`` loaded safely (its tokenizer unless
    ``tokenizer_dir`` is given), or a random initialisation sized for the tokenizer. ``init`` records which
    (with the checkpoint's sha256), for the run's identity and lineage."""
    torch.manual_seed(settings.seed)  # dropout and anything else random starts from the run's seed
    if settings.init_from is not None:
        model, tokenizer = ckpt.load_checkpoint(settings.init_from, device=d.device)
        if tokenizer_dir is not None:
            tokenizer = load_tokenizer(tokenizer_dir)
        return model, tokenizer, {"from": str(settings.init_from),
                                  "sha256": ckpt.checkpoint_sha256(settings.init_from)}
    if tokenizer_dir is None:
        raise InputError("random initialisation needs a tokenizer folder (or set train.init_from)")
    tokenizer = load_tokenizer(tokenizer_dir)
    config = build_config(settings.model, padded_vocab(len(tokenizer)), settings.seq_len, tokenizer.bos_token_id,
                          tokenizer.eos_token_id, tokenizer.pad_token_id)
    return build_model(config, settings.seed, d.device), tokenizer, {"from": "random", "seed": settings.seed}


def padded_vocab(vocab: int, multiple: int = 64) -> int:
    """Embedding rows rounded up to a multiple of 64 (faster matrix multiplies; extra rows go unused)."""
    return -(-vocab // multiple) * multiple


def _result(t: Trainer, state: LoopState) -> TrainResult:
    """The run's result; when it reached its last step, the final checkpoint exported to ``RUN/model``."""
    tokens_per_s = state.timed_tokens / state.timed_s if state.timed_s else None
    result = TrainResult(t.run, None, state.step, state.tokens, state.initial_val_loss, state.val_loss,
                         tokens_per_s, None)
    if state.step < t.total_steps:
        return result
    if t.dist.main:
        _export(t.ckpt_dir / f"step-{state.step:08d}", t.run / "model")
    t.dist.barrier()
    result.model_dir = t.run / "model"
    return result


def _export(checkpoint: Path, model_dir: Path) -> None:
    """The final checkpoint without its trainer state: a plain transformers model folder."""
    import shutil

    tmp = model_dir.with_name(model_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp, ignore=shutil.ignore_patterns(ckpt.TRAINER_STATE))
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(tmp, model_dir)


def _now() -> str:
    from fmaudit.reports.envelope import now_iso

    return now_iso()
