"""Cost of ``fmaudit trace`` against the size of the training corpus, and what the pre-filter saves.

At each size (``--sizes``, total documents: the planted scenario of ``tests/test_remedy.py``, i.e.
:mod:`fmaudit.testing.planted` with ``size - 6`` background documents and the 6 planted ones), a tiny llama
is trained once with the commands the test uses (filter, tokenizer train, train, audit: bias.pairs fails).
Then, with the EK-FAC factors fitted once (``fit_s_N``, untimed in the rounds; the same cached factors
serve both sides), ``--rounds`` interleaved rounds time:

- the whole ``trace_check`` (locate the failing items, TF-IDF pre-filter, influence on the candidates,
  join with the stage records, write trace.json): ``trace_s_N``;
- the in-run baseline: an exhaustive ranking of the same failing items over every training document,
  ``rank_training_documents(..., prefilter="none")``: ``exhaustive_s_N``.

``ratio_N`` is the median over rounds of exhaustive time over trace time; ``ratio`` the median of those.
``share_scored_N`` is trace.json's influence.candidates_scored / corpus_size; ``agreement`` the share of
the exhaustive ranking's top 6 (across sizes) that the trace also ranks top 6; ``planted_top`` the share
of the planted documents in the trace's top 6.

Defaults are sized to finish in a few minutes on 2 cores (3 small trainings, 4 failing items explained, 20
candidates each); ``--sizes 246,492,984 --max-items 16 --candidates 40`` is the test's scale and takes an hour.

    python benchmarks/trace_cost.py [--sizes 60,120,240] [--rounds 2] [--candidates 20] [--max-items 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHECK = "pct_stereotype"


def cli(*args) -> int:
    from fmaudit.cli import main

    try:
        return main([str(a) for a in args])
    except SystemExit as e:
        return int(e.code)


def build(root: Path, size: int, max_steps: int) -> Path:
    """Filter, tokenizer, train and audit the planted scenario with ``size`` documents; the audit folder."""
    from fmaudit.testing.planted import PLANTED, policy, write_corpus, write_pairs

    write_corpus(root / "corpus" / "docs.jsonl", background=size - len(PLANTED))
    write_pairs(root / "pairs.csv")
    pol = root / "policy.yaml"
    pol.write_text(yaml.safe_dump(policy(root, max_steps=max_steps)))
    steps = [("filter", root / "corpus", "--policy", pol, "--out", root / "job", "--workers", 1, "--no-progress", "-q"),
             ("tokenizer", "train", "--data", root / "job", "--vocab-size", 300, "--out", root / "tok"),
             ("train", "--policy", pol, "--data", root / "job", "--tokenizer", root / "tok", "--out", root / "run",
              "--no-progress")]
    for step in steps:
        if cli(*step) != 0:
            raise SystemExit(f"size {size}: {step[0]} failed")
    if cli("audit", root / "run" / "model", "--policy", pol, "--out", root / "audit") != 1:
        raise SystemExit(f"size {size}: the audit did not fail, nothing to trace (raise --max-steps)")
    return root / "audit"


def top_ids(scores: dict[str, float], k: int = 6) -> set[str]:
    return set(sorted(scores, key=lambda i: (-scores[i], i))[:k])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="60,120,240", help="training-corpus sizes (documents), comma-separated")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=20, help="TF-IDF candidates per failing item")
    ap.add_argument("--max-items", type=int, default=4, help="failing items explained (trace_check's max_items)")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--max-steps", type=int, default=120, help="training steps per model (same at every size)")
    args = ap.parse_args()

    from fmaudit.explain.ranking import rank_training_documents
    from fmaudit.remedy.locate import item_query, locate
    from fmaudit.remedy.trace import trace_check
    from fmaudit.testing.planted import PLANTED

    sizes = [int(s) for s in args.sizes.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="trace-bench-"))
    out: dict[str, object] = {}
    ratios, agree, planted = [], [], []
    for size in sizes:
        t0 = time.perf_counter()
        audit_dir = build(scratch / f"n{size}", size, args.max_steps)
        build_s = time.perf_counter() - t0
        cache = scratch / f"n{size}" / "factors"
        finding = locate(audit_dir, CHECK)
        queries = [item_query(it, finding.audit, finding.texts) for it in finding.failing[:args.max_items]]  # as trace_check

        def trace():
            return trace_check(audit_dir, CHECK, top_k=args.top, candidates=args.candidates, cache_dir=cache,
                               max_items=args.max_items, out=scratch / f"n{size}" / "trace")

        def exhaustive():
            return rank_training_documents(finding.checkpoint, finding.data_dir, queries, top_k=args.top,
                                           prefilter="none", cache_dir=cache)

        t0 = time.perf_counter()
        result = trace()  # fits the EK-FAC factors into the cache both sides use
        fit_s = time.perf_counter() - t0
        times = defaultdict(list)
        for r in range(args.rounds):
            sides = [("trace", trace), ("exhaustive", exhaustive)]
            for name, fn in sides if r % 2 == 0 else sides[::-1]:
                t0 = time.perf_counter()
                value = fn()
                times[name].append(time.perf_counter() - t0)
                if name == "exhaustive":
                    full = value
        total: dict[str, float] = defaultdict(float)
        for q in full.queries:
            for doc_id, score in q.scores.items():
                total[doc_id] += score
        traced_top = {d["id"] for d in result["documents"][:len(PLANTED)]}
        agree.append(len(traced_top & top_ids(total)) / len(PLANTED))
        planted.append(len(traced_top & set(PLANTED)) / len(PLANTED))
        ratio = statistics.median(e / t for e, t in zip(times["exhaustive"], times["trace"]))
        ratios.append(ratio)
        share = result["influence"]["candidates_scored"] / result["influence"]["corpus_size"]
        out.update({f"trace_s_{size}": statistics.median(times["trace"]),
                    f"exhaustive_s_{size}": statistics.median(times["exhaustive"]), f"ratio_{size}": ratio,
                    f"share_scored_{size}": share, f"fit_s_{size}": fit_s})
        print(f"size {size}: corpus {result['influence']['corpus_size']} documents, {result['failing_items']} failing "
              f"items; build {build_s:.1f} s, first trace (fits factors) {fit_s:.1f} s; trace "
              f"{out[f'trace_s_{size}']:.2f} s, exhaustive {out[f'exhaustive_s_{size}']:.2f} s (x{ratio:.2f}); "
              f"scored {result['influence']['candidates_scored']} ({share:.0%}); planted in top 6: "
              f"{planted[-1]:.0%}", flush=True)
    summary = {"ratio": statistics.median(ratios), "share_scored": out[f"share_scored_{sizes[-1]}"],
               "agreement": statistics.mean(agree), "planted_top": statistics.mean(planted), **out}
    print(f"\n{'documents':>9}  {'trace s':>8}  {'exhaustive s':>12}  {'ratio':>5}  {'share scored':>12}")
    for size in sizes:
        print(f"{size:>9}  {out[f'trace_s_{size}']:>8.2f}  {out[f'exhaustive_s_{size}']:>12.2f}  "
              f"{out[f'ratio_{size}']:>5.2f}  {out[f'share_scored_{size}']:>12.0%}")
    print(" ".join(f"{k}={v:.3g}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
