"""Cost of the adapt stage on the demo task: feature-extraction throughput and the fit time of each method.

Features: the stage's extraction (texts sorted by length, right-padded batches through the base model, pooled)
against a plain loop that runs the causal LM on one text at a time (the in-run baseline), rounds interleaved,
median ratio. ``max_abs_diff`` is the largest difference between the two feature matrices (they must agree:
padding on the right never reaches a real token of a causal model). A second extraction from the cache gives
the cached texts/s. Fits: every method the demo policy names, on the same split, one thread; and one epoch of
the optional fine-tuning of the last block (``finetune.blocks: 1``) on the training split.

The checkpoint is the demo's architecture (llama-mini) from random initialisation with a tokenizer trained on the
task, unless ``--checkpoint`` names one (e.g. ``reports/demo/train/model`` after ``make demo``).

    python benchmarks/adapt_cost.py [--rows 600] [--rounds 3] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def plain_loop(model, tokenizer, texts, max_length: int):
    """Baseline: one causal-LM forward per text (hidden states requested), mean of the last layer."""
    import numpy as np
    import torch

    out = []
    with torch.inference_mode():
        for t in texts:
            ids = tokenizer(t, add_special_tokens=True, return_tensors="pt")["input_ids"][:, :max_length]
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
            out.append(hidden[0].mean(0).float().numpy())
    return np.stack(out)


def build_checkpoint(texts, out: Path) -> Path:
    from fmaudit.core.config import ModelSettings
    from fmaudit.core.model import build_config, build_model
    from fmaudit.core.tokenizer import train_tokenizer

    tok = train_tokenizer(texts, 2048)
    config = build_config(ModelSettings(preset="llama-mini"), len(tok), 128, tok.bos_token_id, tok.eos_token_id,
                          tok.pad_token_id)
    build_model(config, seed=0).save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--checkpoint")
    args = ap.parse_args()

    import numpy as np
    import torch

    from fmaudit.core.checkpoint import load_checkpoint
    from fmaudit.demo.bios import write_bios_task
    from fmaudit.policy import shipped_policy, load_policy
    from fmaudit.tune.adapt.features import extract_features
    from fmaudit.tune.adapt.methods import build_candidates
    from fmaudit.tune.adapt.stage import fit_and_measure
    from fmaudit.tune.adapt.task import load_task, split_task

    torch.set_num_threads(1)
    settings = load_policy(shipped_policy("demo")).tune["adapt"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        task = load_task(write_bios_task(tmp / "bios.csv", rows=args.rows, seed=0), settings.columns,
                         settings.positive_label)
        ckpt = Path(args.checkpoint) if args.checkpoint else build_checkpoint(task.texts, tmp / "ckpt")
        model, tok = load_checkpoint(ckpt)
        fs = settings.features
        texts = task.texts
        loop_s, batched_s = [], []
        for _ in range(args.rounds):  # interleaved rounds; no cache in either
            t0 = time.perf_counter()
            base = plain_loop(model, tok, texts, fs.max_length)
            loop_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            X, _ = extract_features(ckpt, texts, fs, None, model, tok)
            batched_s.append(time.perf_counter() - t0)
        diff = float(np.abs(X - base).max())
        extract_features(ckpt, texts, fs, tmp / "cache", model, tok)
        t0 = time.perf_counter()
        _, info = extract_features(ckpt, texts, fs, tmp / "cache")
        cached_s = time.perf_counter() - t0
        assert info["computed"] == 0
        ratio = statistics.median(l / b for l, b in zip(loop_s, batched_s))
        n = len(texts)
        print(f"checkpoint: {ckpt} ({sum(p.numel() for p in model.parameters()):,} parameters); {n} biographies")
        print(f"per-text forward loop: {n / statistics.median(loop_s):8.1f} texts/s")
        print(f"batched extraction:    {n / statistics.median(batched_s):8.1f} texts/s (batch {fs.batch_size}, "
              f"sorted by length)  ratio {ratio:.2f}x (median of {args.rounds} interleaved rounds)")
        print(f"from the cache:        {n / cached_s:8.1f} texts/s (checkpoint sha256 included)")

        from sklearn.preprocessing import StandardScaler
        from threadpoolctl import threadpool_limits

        split = split_task(task, settings.test_fraction, settings.seed)
        sc = StandardScaler().fit(X[split.train])
        A = task.sensitive
        with threadpool_limits(1):
            models, _ = fit_and_measure(
                build_candidates(settings), sc.transform(X[split.train]), sc.transform(X[split.test]),
                task.labels[split.train], task.labels[split.test], A.iloc[split.train].reset_index(drop=True),
                A.iloc[split.test].reset_index(drop=True), task.groups[split.test],
                settings.model_copy(update={"bootstrap": 0}))
        print(f"\n{'method':34} {'fit s':>7} {'accuracy':>9} {'DP diff':>8}")
        for name, m in models.items():
            print(f"{name:34} {m['fit_s']:7.2f} {m['accuracy']:9.3f} "
                  f"{m['disparities']['demographic_parity_difference']:8.3f}")
        # the optional light fine-tuning (finetune.blocks=1): one epoch over the training split, then the features
        from fmaudit.tune.adapt.finetune import finetune_encoder

        ft = settings.finetune.model_copy(update={"blocks": 1, "epochs": 1})
        t0 = time.perf_counter()
        tuned = finetune_encoder(model, tok, [texts[i] for i in split.train], task.labels[split.train], fs, ft,
                                 settings.seed)
        finetune_s = time.perf_counter() - t0
        print(f"{'finetune (last block, 1 epoch)':34} {finetune_s:7.2f}   {tuned['tuned_parameters']:,} parameters, "
              f"{len(split.train) / finetune_s:.1f} texts/s")
        fits = " ".join(f"fit_s_{k}={v['fit_s']:.2f}" for k, v in models.items()) + f" finetune_epoch_s={finetune_s:.2f}"
        print(f"ratio={ratio:.2f} batched_texts_per_s={n / statistics.median(batched_s):.1f} "
              f"loop_texts_per_s={n / statistics.median(loop_s):.1f} cached_texts_per_s={n / cached_s:.0f} "
              f"max_abs_diff={diff:.2e} {fits}")


if __name__ == "__main__":
    main()
