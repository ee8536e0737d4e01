"""Refusal-tune throughput: the SFT phase of ``fmaudit refusal-tune`` (fmaudit's training loop via
``fine_tune`` over prompt/response pairs) against a plain PyTorch loop on the same model and the same batches.

Both start from the same checkpoint (a llama-style model with a tokenizer trained on the refusal generator's
texts, built here), train on the same generated pairs in the same order (padded batches, response-only loss),
with AdamW and gradient clipping. Tokens are real (unpadded) tokens. fmaudit's first log interval, its held-out
evaluations and checkpoints are not timed; the plain loop skips the same warm-up steps. Rounds interleave the two
loops (order alternating); ``ratio`` is the median over rounds of fmaudit's tokens/s over the plain loop's.

    python benchmarks/refusal_tune.py [--preset llama-mini] [--rounds 5] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fmaudit.core.checkpoint import load_checkpoint  # noqa: E402
from fmaudit.core.data import SampleOrder  # noqa: E402
from fmaudit.core.sources import PairSource  # noqa: E402
from fmaudit.core.train import fine_tune  # noqa: E402
from fmaudit.testing.refusal_lm import tiny_chat_checkpoint  # noqa: E402
from fmaudit.tune.refusal.settings import RefusalTuneSettings  # noqa: E402
from fmaudit.tune.refusal.stage import RefusalTune, phase_settings  # noqa: E402


def plain_loop(checkpoint: Path, pairs, settings, warmup: int, steps: int) -> float:
    """Forward, backward, clip, AdamW over the same padded batches; returns real tokens per second."""
    model, tok = load_checkpoint(checkpoint)
    source = PairSource(tok, pairs, pairs[:4], settings.seq_len)
    order = SampleOrder(len(source), settings.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(settings.beta1, settings.beta2),
                            weight_decay=settings.weight_decay)
    b = settings.micro_batch
    model.train()
    tokens = 0
    for step in range(warmup + steps):
        if step == warmup:
            t0, tokens = time.perf_counter(), 0
        batch = source.batch([order(step * b + j) for j in range(b)])
        tokens += batch.pop("tokens")
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return tokens / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="llama-mini")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per run (a multiple of --warmup)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed first steps (fmaudit's first log interval)")
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="refusal-bench-"))
    ckpt = tiny_chat_checkpoint(work / "base", preset=args.preset, steps=5)
    stage = RefusalTune(RefusalTuneSettings(cpu_threads=args.threads, sft={
        "steps": args.warmup + args.steps, "micro_batch": args.micro_batch, "warmup_steps": 2,
        "checkpoint_interval": 10**6}))
    plan = stage.plan()
    settings = phase_settings(stage.settings.sft, ckpt, stage.settings).model_copy(
        update={"log_interval": args.warmup, "eval_batches": 1})
    tune, plain = [], []
    for r in range(args.rounds):
        for which in (("tune", "plain") if r % 2 == 0 else ("plain", "tune")):
            if which == "tune":
                result = fine_tune(settings, work / f"run{r}", lambda tok, m: PairSource(
                    tok, plan["pairs"], plan["val_pairs"][:4], settings.seq_len), progress=False)
                tune.append(result.tokens_per_s)
            else:
                plain.append(plain_loop(ckpt, plan["pairs"], settings, args.warmup, args.steps))
        print(f"round {r}: refusal-tune {tune[-1]:,.0f} tokens/s, plain loop {plain[-1]:,.0f} tokens/s, "
              f"ratio {tune[-1] / plain[-1]:.3f}", flush=True)
    ratio = statistics.median(a / b for a, b in zip(tune, plain))
    print(f"model {args.preset} from {ckpt}; {len(plan['pairs'])} training pairs, micro-batch {args.micro_batch}, "
          f"{args.steps} timed steps per run, {args.threads} thread(s)")
    print(f"ratio={ratio:.3f} tokens_per_s={statistics.median(tune):.0f} "
          f"plain_tokens_per_s={statistics.median(plain):.0f}")


if __name__ == "__main__":
    main()
