"""Cost of EK-FAC influence (kronfluence) against the number of training documents, and what the cheap
variants lose.

A llama-tiny model is trained once on the largest synthetic corpus (documents drawn from a few topics); then,
for each corpus size (its first N documents), the EK-FAC factors are fitted from scratch (fresh cache) and a
batch of queries is scored against every document. Printed per size: factor-fitting seconds, scoring
milliseconds per query and per (query, document) pair, and the peak resident memory of the phase.

At the largest size, the cheap path (TF-IDF pre-filter to ``--candidates`` documents per query, plus
low-rank query gradients of rank ``--rank``) is compared with the exact exhaustive path, in interleaved
rounds (median ratio of scoring times):
``ratio`` = exhaustive exact seconds / cheap seconds; ``recall_at_10`` = share of the exhaustive top-10 that
the pre-filter keeps; ``prefilter_spearman`` = Spearman between exhaustive scores and pre-filtered scores over
the exhaustive top-20 (documents the pre-filter dropped rank last); ``spearman`` = Spearman between low-rank
and exact scores over each query's top-20 candidates (median over queries).

    python benchmarks/influence_cost.py [--sizes 50,100,200] [--queries 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOPICS = {
    "sea": "boat wave sail harbor fish tide anchor shore captain deck".split(),
    "kitchen": "bread oven flour salt butter knife soup pan recipe baker".split(),
    "clinic": "doctor nurse patient fever pill ward bandage clinic dose scan".split(),
    "school": "teacher pupil lesson chalk desk book exam class bell homework".split(),
    "farm": "cow barn hay tractor field goat seed harvest fence mud".split(),
}
GLUE = "the a of and with near on under was is".split()


def corpus(n: int, seed: int = 0) -> list:
    from fmaudit.corpus import Document

    rng = random.Random(seed)
    docs = []
    for i in range(n):
        words = TOPICS[list(TOPICS)[i % len(TOPICS)]]
        text = " ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(GLUE) for _ in range(rng.randint(16, 32)))
        docs.append(Document(f"doc-{i:05d}", text))
    return docs


class PeakRSS:
    """Peak resident memory (MiB) of this process while the block runs, sampled every 10 ms."""

    def __enter__(self):
        import psutil

        self._proc, self._stop, self.peak = psutil.Process(), threading.Event(), 0
        self.start = self._proc.memory_info().rss

        def watch():
            while not self._stop.is_set():
                self.peak = max(self.peak, self._proc.memory_info().rss)
                time.sleep(0.01)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss) / 2**20


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main() -> None:
    import numpy as np
    import torch

    from fmaudit.core.tokenizer import train_tokenizer
    from fmaudit.explain.influence import InfluenceAnalysis, InfluenceSettings
    from fmaudit.explain.prefilter import tfidf_candidates
    from fmaudit.testing.tiny_lm import train_tiny_lm

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="50,100,200", help="corpus sizes (documents), comma-separated")
    ap.add_argument("--queries", type=int, default=8)
    ap.add_argument("--candidates", type=int, default=0, help="pre-filter candidates per query (default: 5%% of "
                    "the largest corpus: the queries together then cover at most 40%% of it)")
    ap.add_argument("--rank", type=int, default=4, help="rank of the low-rank query gradients (a query of L "
                    "tokens has per-layer gradients of rank <= L: 8-word queries are exact from rank ~10)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150, help="training steps of the model")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    docs = corpus(sizes[-1])
    tok = train_tokenizer([d.text for d in docs], 400)
    model = train_tiny_lm([d.text for d in docs], tok, steps=args.steps, lr=5e-3)
    rng = random.Random(1)
    queries = [" ".join(rng.choice(TOPICS[t]) for _ in range(8)) for t in (list(TOPICS) * args.queries)[:args.queries]]
    print(f"model: llama-tiny, {sum(p.numel() for p in model.parameters()):,} parameters; {args.queries} queries; "
          f"torch threads {args.threads}")
    print(f"{'documents':>9} {'fit_s':>7} {'score_ms/query':>14} {'score_us/pair':>13} {'peak_rss_mib':>12}")
    fit_s, query_ms = [], []
    with tempfile.TemporaryDirectory() as cache:
        for n in sizes:
            with PeakRSS() as mem:
                analysis = InfluenceAnalysis(model, tok, docs[:n], cache_dir=Path(cache) / f"n{n}").fit()
                t0 = time.perf_counter()
                exact = analysis.score(queries)["all"]
                score_s = time.perf_counter() - t0
            fit_s.append(analysis.fit_seconds_)
            query_ms.append(1000 * score_s / len(queries))
            print(f"{n:>9} {analysis.fit_seconds_:>7.2f} {query_ms[-1]:>14.1f} "
                  f"{1e6 * score_s / (len(queries) * n):>13.1f} {mem.peak:>12.0f}")

        # cheap (pre-filter + low-rank) against exact exhaustive, at the largest size, interleaved rounds
        n = sizes[-1]
        k = args.candidates or max(5, n // 20)
        cheap = InfluenceAnalysis(model, tok, docs[:n], cache_dir=Path(cache) / f"n{n}",
                                  settings=InfluenceSettings(query_rank=args.rank)).fit()
        cands = tfidf_candidates([d.text for d in docs[:n]], queries, k)
        ratios = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            exact = analysis.score(queries)["all"]
            t_exact = time.perf_counter() - t0
            t0 = time.perf_counter()
            low = cheap.score(queries, cands.union)["all"]
            t_cheap = time.perf_counter() - t0
            ratios.append(t_exact / t_cheap)
        col = {int(d): j for j, d in enumerate(cands.union)}
        recalls, pre_rho, low_rho = [], [], []
        for qi in range(len(queries)):
            top = np.argsort(-exact[qi], kind="stable")[:20]
            kept = set(int(d) for d in cands.per_query[qi])
            recalls.append(len(kept & set(int(d) for d in top[:10])) / 10)
            floor = exact[qi].min() - 1.0  # a document the pre-filter dropped ranks below every scored one
            pre_rho.append(spearman(exact[qi, top], [exact[qi, d] if int(d) in kept else floor for d in top]))
            own = cands.per_query[qi]
            exact_own = exact[qi, own]
            best = own[np.argsort(-exact_own, kind="stable")[:20]]
            low_rho.append(spearman(exact[qi, best], [low[qi, col[int(d)]] for d in best]))
    ratio = float(np.median(ratios))
    print(f"cheap path at {n} documents: {k} TF-IDF candidates per query ({len(cands.union)} scored, coverage "
          f"{cands.coverage:.0%}), query rank {args.rank}; exact exhaustive / cheap scoring time, median of "
          f"{args.rounds} interleaved rounds: {ratio:.2f}x")
    growth = fit_s[-1] / fit_s[0] if fit_s[0] else float("nan")
    print(f"sizes={','.join(map(str, sizes))} fit_s={','.join(f'{x:.2f}' for x in fit_s)} "
          f"query_ms={','.join(f'{x:.1f}' for x in query_ms)} fit_growth={growth:.2f} peak_rss_mib={mem.peak:.0f} "
          f"ratio={ratio:.2f} recall_at_10={np.mean(recalls):.3f} prefilter_spearman={np.median(pre_rho):.3f} "
          f"spearman={np.median(low_rho):.3f}")


if __name__ == "__main__":
    main()
