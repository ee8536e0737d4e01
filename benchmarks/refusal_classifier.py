"""Refusal classifier: throughput (completions/s) and accuracy on the labelled suite, against the substring matcher
peer tools use (GCG's "test prefixes" searched anywhere in the response), measured in the same run.

Both classify the suite's completions (tests/data/refusal_suite.jsonl), repeated ``--copies`` times so each round
is long enough to time. Rounds alternate between the two (order rotating), and each round's time is the best of
``--repeats`` passes (load from other users of a shared machine only slows a run down); ``ratio`` is the median over
rounds of classifier throughput / baseline throughput (below 1: the rules cost more than a substring search).
``agreement`` is refusal-versus-compliance agreement with the suite's labels; ``three_class`` counts full and
partial refusals apart.

    python benchmarks/refusal_classifier.py [--rounds 7] [--copies 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fmaudit.scoring.refusal import COMPLIANCE, LABELS, classify, substring_refusal  # noqa: E402


def timed(fn, texts, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for text, prompt in texts:
            fn(text, prompt)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--copies", type=int, default=20, help="suite copies per round")
    ap.add_argument("--repeats", type=int, default=3, help="passes per round; best time counts")
    args = ap.parse_args()
    rows = [json.loads(line) for line in (ROOT / "tests/data/refusal_suite.jsonl").read_text("utf-8").splitlines()]
    texts = [(r["response"], r["prompt"]) for r in rows] * args.copies
    runners = {"rules": lambda t, p: classify(t, p).label, "substring": lambda t, p: substring_refusal(t)}
    rates = {k: [] for k in runners}
    for r in range(args.rounds):
        order = list(runners) if r % 2 == 0 else list(runners)[::-1]
        for k in order:
            rates[k].append(len(texts) / timed(runners[k], texts, args.repeats))
    ratio = statistics.median(a / b for a, b in zip(rates["rules"], rates["substring"]))

    cm = Counter((r["label"], classify(r["response"], r["prompt"]).label) for r in rows)
    agreement = sum(n for (t, p), n in cm.items() if (t == COMPLIANCE) == (p == COMPLIANCE)) / len(rows)
    three = sum(n for (t, p), n in cm.items() if t == p) / len(rows)
    naive = sum((r["label"] == COMPLIANCE) != substring_refusal(r["response"]) for r in rows) / len(rows)
    print(f"suite: {len(rows)} completions ({dict(Counter(r['label'] for r in rows))}); "
          f"{len(texts)} per round, {args.rounds} rounds")
    print("confusion (rows truth, columns predicted): " + ", ".join(LABELS))
    for t in LABELS:
        print(f"  {t:>16}: " + " ".join(f"{cm[(t, p)]:4d}" for p in LABELS))
    print(f"rules: {statistics.median(rates['rules']):,.0f} completions/s; "
          f"substring: {statistics.median(rates['substring']):,.0f} completions/s")
    print(f"ratio={ratio:.3f} throughput={statistics.median(rates['rules']):.0f} "
          f"baseline_throughput={statistics.median(rates['substring']):.0f} agreement={agreement:.3f} "
          f"three_class={three:.3f} baseline_agreement={naive:.3f}")


if __name__ == "__main__":
    main()
