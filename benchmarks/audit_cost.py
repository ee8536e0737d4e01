"""Cost of the audits: wall time per audit and its growth with prompt count, batched generation against a
plain per-prompt ``model.generate`` loop, and ``bias.pairs`` against lm-evaluation-harness's HF model scoring.

The model is a randomly initialised Llama (``--hidden``, ``--layers``; tokenizer trained on the pair and
held-out sentences), or any checkpoint (``--model``, e.g. ``reports/demo/train/model``). Every comparison
runs its two sides alternately for ``--rounds`` rounds and reports the median ratio of their times:

- ``gen_ratio``: tokens/s of ``ModelUnderAudit.generate`` (left-padded batches of ``--gen-batch`` with the
  KV cache, sampling seeded per prompt) over a loop of ``model.generate`` per prompt (``do_sample``, the
  same decoding settings), on ``--gen-prompts`` prompts. Generated tokens are counted on both sides by
  re-encoding the new text with the same tokenizer.
- ``pairs_ratio``: lm-eval's time over ours for the same ``--pairs`` pairs (the 53 built-in pairs, each
  under several openers, so none repeats): lm-eval's ``HFLM.loglikelihood`` on the task's requests (empty
  context, as its crows_pairs task builds them) plus its own ``process_results`` and mean, against the whole
  ``bias.pairs`` audit (CSV reading, scoring, every metric with its interval, items with hashed texts). Both
  use batch size ``--batch``. ``identical`` is 1 when pct_stereotype is equal and likelihood_diff agrees to
  1e-6 (relative).
- per audit, the wall time of ``run`` on a fresh model at 1x, 2x and 4x ``--base`` items (``growth``: the
  time at 4x over the time at 1x; about 4 is linear).

    python benchmarks/audit_cost.py [--pairs 1500] [--rounds 3] [--model DIR]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCRATCH = tempfile.TemporaryDirectory(prefix="audit-bench-")
OPENERS = ["", "Honestly, ", "Yesterday I heard that ", "My friend told me that ", "Everyone knows that ",
           "It is said that ", "In the news today: ", "I read online that ", "Some people think that ",
           "At dinner someone claimed that ", "Apparently ", "The teacher said that ", "I overheard that ",
           "According to the neighbours, ", "It seems that ", "Once again ", "As usual, ", "Of course ",
           "In my town, ", "They say that ", "Sadly, ", "Back home, ", "On the radio: ", "My uncle says ",
           "At work, ", "Believe it or not, ", "In the story, ", "Funnily enough, ", "Rumour has it that ",
           "The article claimed that "]


def builtin_pairs() -> list[dict]:
    from fmaudit.audits.inputs import builtin

    with open(builtin("pairs.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def pair_file(n: int) -> Path:
    """``n`` distinct pairs: built-in pair k % 53 under opener k // 53."""
    base = builtin_pairs()
    if n > len(base) * len(OPENERS):
        raise SystemExit(f"--pairs at most {len(base) * len(OPENERS)}")
    path = Path(SCRATCH.name) / f"pairs-{n}.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(base[0]))
        w.writeheader()
        for k in range(n):
            row, opener = dict(base[k % len(base)]), OPENERS[k // len(base)]
            for col in ("sent_more", "sent_less"):
                row[col] = opener + (row[col][0].lower() + row[col][1:] if opener else row[col])
            w.writerow(row)
    return path


def build_model(args) -> Path:
    if args.model:
        return Path(args.model)
    from transformers import LlamaConfig, LlamaForCausalLM

    from fmaudit.audits.inputs import builtin
    from fmaudit.core.tokenizer import train_tokenizer

    texts = [r[c] for r in builtin_pairs() for c in ("sent_more", "sent_less")] + \
        builtin("heldout.txt").read_text().splitlines() + OPENERS
    path = Path(SCRATCH.name) / "model"
    tok = train_tokenizer(texts, 1024, path)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=args.hidden * 3,
                         num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=256, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def plain_generate_loop(model, tok, prompts, seeds, decoding) -> list[str]:
    """The baseline: one ``model.generate`` call per prompt, seeded before each."""
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(max_new_tokens=decoding.max_new_tokens, do_sample=True, temperature=decoding.temperature,
                              top_k=0, top_p=1.0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    out = []
    with torch.no_grad():
        for prompt, seed in zip(prompts, seeds):
            enc = tok(prompt, return_tensors="pt")
            torch.manual_seed(seed)
            ids = model.generate(**enc, generation_config=config)
            out.append(tok.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


def count_tokens(tok, texts) -> int:
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)


def bench_generation(path: Path, args) -> dict:
    from fmaudit.audits.model import DecodingSettings, ModelUnderAudit, item_seed

    texts = [r["sent_more"] for r in builtin_pairs()]
    prompts = [" ".join(texts[i % len(texts)].split()[:4]) + (f" {i}" if i >= len(texts) else "")
               for i in range(args.gen_prompts)]
    seeds = [item_seed(0, p) for p in prompts]
    decoding = DecodingSettings(max_new_tokens=args.new_tokens, sample=True)
    base = ModelUnderAudit(path)
    ratios, ours_tps, plain_tps = [], [], []
    for _ in range(args.rounds):
        mua = ModelUnderAudit(path, model=base.model, tokenizer=base.tokenizer)  # empty caches
        t0 = time.perf_counter()
        ours = mua.generate(prompts, decoding, seeds, batch_size=args.gen_batch)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        plain = plain_generate_loop(base.model, base.tokenizer, prompts, seeds, decoding)
        t_plain = time.perf_counter() - t0
        ours_tps.append(count_tokens(base.tokenizer, ours) / t_ours)
        plain_tps.append(count_tokens(base.tokenizer, plain) / t_plain)
        ratios.append(ours_tps[-1] / plain_tps[-1])
    return {"gen_ratio": statistics.median(ratios), "gen_tokens_per_s": statistics.median(ours_tps),
            "plain_tokens_per_s": statistics.median(plain_tps)}


def lm_eval_pairs(lm, path: Path) -> dict:
    """lm-eval's side: its HF model's loglikelihood on the crows_pairs requests, then its process_results."""
    from lm_eval.api.instance import Instance
    from lm_eval.tasks.crows_pairs.utils import doc_to_choice, process_results

    with open(path, newline="", encoding="utf-8") as f:
        docs = list(csv.DictReader(f))
    requests = [Instance("loglikelihood", doc, ("", choice), idx=j)
                for doc in docs for j, choice in enumerate(doc_to_choice(doc))]
    lls = lm.loglikelihood(requests, disable_tqdm=True)
    rows = [process_results(doc, lls[2 * i:2 * i + 2]) for i, doc in enumerate(docs)]
    return {k: statistics.fmean(r[k] for r in rows) for k in ("pct_stereotype", "likelihood_diff")}


def bench_pairs(path: Path, args) -> dict:
    from lm_eval.models.huggingface import HFLM

    from fmaudit.audits.base import AuditContext
    from fmaudit.audits.bias_pairs import BiasPairs
    from fmaudit.audits.model import ModelUnderAudit

    pairs = pair_file(args.pairs)
    base = ModelUnderAudit(path)
    lm = HFLM(pretrained=base.model, tokenizer=base.tokenizer, batch_size=args.batch, device="cpu")
    audit = BiasPairs(BiasPairs.Settings(data=pairs, batch_size=args.batch, item_text="hash"))
    ratios = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        theirs = lm_eval_pairs(lm, pairs)
        t_theirs = time.perf_counter() - t0
        mua = ModelUnderAudit(path, model=base.model, tokenizer=base.tokenizer)
        t0 = time.perf_counter()
        ours = audit.run(mua, AuditContext(Path(SCRATCH.name))).metrics
        t_ours = time.perf_counter() - t0
        ratios.append(t_theirs / t_ours)
        print(f"  pairs round: lm-eval {t_theirs:.2f}s, bias.pairs {t_ours:.2f}s", flush=True)
    identical = (ours["pct_stereotype"].value == theirs["pct_stereotype"]
                 and abs(ours["likelihood_diff"].value - theirs["likelihood_diff"]) <= 1e-6 * theirs["likelihood_diff"])
    return {"pairs_ratio": statistics.median(ratios), "identical": int(identical),
            "pct_stereotype": ours["pct_stereotype"].value, "lm_eval_pct_stereotype": theirs["pct_stereotype"],
            "likelihood_diff": ours["likelihood_diff"].value, "lm_eval_likelihood_diff": theirs["likelihood_diff"]}


def bench_audits(path: Path, args) -> dict:
    """Wall time of each audit's run at 1x, 2x, 4x ``--base`` items (fresh caches each time)."""
    from fmaudit.audits.base import AuditContext
    from fmaudit.audits.bias_pairs import BiasPairs
    from fmaudit.audits.inputs import builtin
    from fmaudit.audits.model import ModelUnderAudit
    from fmaudit.audits.perplexity import Perplexity

    base = ModelUnderAudit(path)
    held = builtin("heldout.txt").read_text().splitlines()
    out = {}
    for scale in (1, 2, 4):
        n = args.base * scale
        texts = Path(SCRATCH.name) / f"held-{n}.txt"
        texts.write_text("\n".join(f"{OPENERS[(i // len(held)) % len(OPENERS)]}{held[i % len(held)]}"
                                   for i in range(n)) + "\n")
        for name, audit in (("perplexity", Perplexity(Perplexity.Settings(data=texts, item_text="hash"))),
                            ("bias.pairs", BiasPairs(BiasPairs.Settings(data=pair_file(n), item_text="hash")))):
            mua = ModelUnderAudit(path, model=base.model, tokenizer=base.tokenizer)
            t0 = time.perf_counter()
            audit.run(mua, AuditContext(Path(SCRATCH.name)))
            out[f"{name}_{n}_s"] = time.perf_counter() - t0
    for name in ("perplexity", "bias.pairs"):
        out[f"{name}_growth"] = out[f"{name}_{args.base * 4}_s"] / out[f"{name}_{args.base}_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="checkpoint folder (default: a random Llama built here)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--gen-prompts", type=int, default=64)
    ap.add_argument("--gen-batch", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--base", type=int, default=100, help="items at 1x for the growth figures")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    path = build_model(args)
    figures = {}
    for part in (bench_audits, bench_generation, bench_pairs):
        t0 = time.perf_counter()
        result = part(path, args)
        print(f"{part.__name__} ({time.perf_counter() - t0:.0f}s):", flush=True)
        for k, v in result.items():
            print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}", flush=True)
        figures.update(result)
    keys = ["gen_ratio", "pairs_ratio", "identical", "perplexity_growth", "bias.pairs_growth", "gen_tokens_per_s"]
    print(" ".join(f"{k}={figures[k]:.3g}" if isinstance(figures[k], float) else f"{k}={figures[k]}" for k in keys))


if __name__ == "__main__":
    main()
