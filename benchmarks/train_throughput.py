"""Training throughput: fmaudit's training loop against a minimal plain-PyTorch loop, in the same process.

Both train the same model (same config, random init), on the same packed tokens, with the same batch,
sequence length, AdamW settings, gradient clipping and autocast precision. fmaudit's run is the real
``fmaudit.core.train.train`` (data order, logging, checkpoint state) with its first log interval, held-out
evaluations and checkpoints excluded from the timing; the plain loop excludes the same warm-up steps.

    python benchmarks/train_throughput.py                       # CPU: llama-mini, seq 128
    python benchmarks/train_throughput.py --device cuda --dtype bf16 --preset llama-160m --seq-len 1024 \
        --micro-batch 16 --vocab-size 32000                     # GPU: also prints MFU

Rounds interleave the two loops (the order alternating); ``ratio`` is the median over rounds of fmaudit's
tokens/s over the plain loop's in the same round, the tokens/s figures are medians too. The last line is
``ratio=... tokens_per_s=... plain_tokens_per_s=...`` (and ``mfu=...`` on a GPU).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fmaudit.core.config import TrainSettings  # noqa: E402
from fmaudit.core.model import build_config, build_model  # noqa: E402
from fmaudit.core.sizing import model_size, peak_flops  # noqa: E402
from fmaudit.core.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402
from fmaudit.core.train import padded_vocab, train  # noqa: E402
from fmaudit.corpus import write_jsonl  # noqa: E402


def synthetic_corpus(folder: Path, tokens: int, vocab_words: int, seed: int = 0) -> Path:
    """Documents of Zipf-distributed random words (enough distinct words for a large BPE vocabulary)."""
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(vocab_words)]
    weights = [1 / (r + 1) for r in range(vocab_words)]
    docs, n = [], 0
    while n < tokens:
        text = " ".join(rng.choices(words, weights, k=rng.randint(50, 400)))
        docs.append({"id": f"bench-{len(docs)}", "text": text})
        n += len(text) // 3
    write_jsonl(folder / "data" / "00000.jsonl", docs)
    return folder


def plain_loop(settings: TrainSettings, config, tokens: np.ndarray, device: str, warmup: int, steps: int) -> float:
    """The minimal loop: sequential batches, forward, backward, clip, AdamW step. Returns tokens/s."""
    model = build_model(config, settings.seed, device)
    step_model = torch.compile(model) if settings.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(settings.beta1, settings.beta2),
                            weight_decay=settings.weight_decay, fused=device.startswith("cuda"))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(settings.precision)
    b, seq = settings.micro_batch, settings.seq_len
    n_batches = len(tokens) // (b * seq)
    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            t0 = time.perf_counter()
        i = step % n_batches
        x = torch.from_numpy(tokens[i * b * seq:(i + 1) * b * seq].reshape(b, seq).astype(np.int64)).to(device)
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            loss = step_model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync(device)
    return steps * b * seq / (time.perf_counter() - t0)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="llama-mini")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--vocab-size", type=int, default=2048)
    p.add_argument("--steps", type=int, default=20, help="timed steps (a multiple of --warmup)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (one run of each loop, order "
                                                        "alternating); the ratio is the median over rounds")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None, help="default: bf16 on GPU, else fp32")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak FLOP/s for MFU (default: known GPUs' bf16)")
    p.add_argument("--compile", action="store_true", help="torch.compile (both loops)")
    args = p.parse_args()
    if args.steps % args.warmup:
        p.error("--steps must be a multiple of --warmup")
    dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    work = Path(tempfile.mkdtemp(prefix="fmaudit-train-bench-"))
    corpus_tokens = max(200_000, 4 * args.micro_batch * args.seq_len * (args.steps + args.warmup))
    synthetic_corpus(work / "job", corpus_tokens, vocab_words=max(2 * args.vocab_size, 1000))
    train_tokenizer(work / "job" / "data", args.vocab_size, work / "tok")
    settings = TrainSettings(
        model={"preset": args.preset}, seq_len=args.seq_len, micro_batch=args.micro_batch, lr=1e-3,
        warmup_steps=args.warmup, max_steps=args.warmup + args.steps, holdout_fraction=0.01, eval_interval=10**6,
        eval_batches=1, log_interval=args.warmup, checkpoint_interval=10**6, precision=dtype,
        cpu_threads=args.threads, compile=args.compile)
    tok = load_tokenizer(work / "tok")
    config = build_config(settings.model, padded_vocab(len(tok)), args.seq_len, tok.bos_token_id, tok.eos_token_id,
                          tok.pad_token_id)

    fm, plain = [], []
    for r in range(args.rounds):
        # Alternate which loop goes first, so that load from other users of the machine falls on both alike.
        for which in (("fmaudit", "plain") if r % 2 == 0 else ("plain", "fmaudit")):
            if which == "fmaudit":
                result = train(settings, work / "job", work / "tok", work / f"run{r}", progress=False,
                               device=args.device)
                fm.append(result.tokens_per_s)
                meta = json.loads((work / f"run{r}" / "tokens" / "meta.json").read_text())
                tokens = np.fromfile(work / f"run{r}" / "tokens" / "train.bin", dtype=meta["dtype"])
            else:  # round 0 runs fmaudit first: its token files are there
                plain.append(plain_loop(settings, config, tokens, args.device, args.warmup, args.steps))
        print(f"round {r}: fmaudit {fm[-1]:,.0f} tokens/s, plain PyTorch {plain[-1]:,.0f} tokens/s, "
              f"ratio {fm[-1] / plain[-1]:.3f}", flush=True)
    ratio = statistics.median(a / b for a, b in zip(fm, plain))
    best_fm, best_plain = statistics.median(fm), statistics.median(plain)
    size = model_size(config, args.seq_len, args.micro_batch)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"model {args.preset}: {size['parameters']:,} parameters, vocab {config.vocab_size}, seq {args.seq_len}, "
          f"micro-batch {args.micro_batch}, {dtype}, device {device_name}")
    line = f"ratio={ratio:.3f} tokens_per_s={best_fm:.0f} plain_tokens_per_s={best_plain:.0f}"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else peak_flops(device_name)
    if args.device.startswith("cuda") and peak:
        mfu = best_fm * size["flops_per_token_train"] / peak
        plain_mfu = best_plain * size["flops_per_token_train"] / peak
        line += f" mfu={mfu:.3f} plain_mfu={plain_mfu:.3f}"
    print(line)


if __name__ == "__main__":
    main()
