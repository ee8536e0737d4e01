"""Scale-out: documents/s with 1 and 2 workers, on the local engine and on the Ray engine, same corpus and policy.

The stage does real per-document CPU work: Gopher's repetition rule (drop a document when too many of its
characters lie in duplicated word n-grams, n = 5..10), written in plain Python, so each worker is CPU-bound.
It is defined in this script; spawned local workers re-import the script (its stage registers itself) and the
Ray engine ships it to the actors by value.

Each configuration runs ``--repeats`` times into a fresh folder, in interleaved rounds; the fastest wall time
counts (the machine may be shared: the load average is printed). The Ray instance is started once, before
the timed runs (as on a cluster, where Ray is already up); its start time is printed apart. Figures:

- documents/s of each configuration (``fmaudit.pipeline.runner.run_filter`` wall time, actor start included);
- scaling efficiency of an engine: docs/s with 2 workers / (2 x docs/s with 1 worker);
- ``ray_ratio``: Ray's wall time / the local engine's wall time with 2 workers (> 1: Ray is slower);
- ``identical``: 1 when all runs wrote byte-identical data/ and dropped/ folders.

The last line is ``efficiency=<Ray's> local_efficiency=... ray_ratio=... ...``.

    python benchmarks/scaling.py [--docs 6000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import Field  # noqa: E402

from fmaudit.stages import register  # noqa: E402
from fmaudit.stages.base import Filter, StageSettings  # noqa: E402

WORKER_COUNTS = (1, 2)


class RepetitionSettings(StageSettings):
    max_duplicate_fraction: float = Field(0.2, ge=0, le=1, description="Drop above this duplicated-n-gram share.")


@register
class BenchRepetition(Filter):
    """Gopher's duplicate n-gram character fractions (n = 5..10), the largest against one threshold."""

    name = "bench_repetition"
    Settings = RepetitionSettings

    def filter(self, doc, stats) -> Optional[str]:
        words = doc.text.split()
        total = sum(len(w) for w in words) or 1
        worst = 0.0
        for n in range(5, 11):
            grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
            counts = Counter(grams)
            covered = [False] * len(words)
            for i, gram in enumerate(grams):
                if counts[gram] > 1:
                    covered[i:i + n] = [True] * n
            worst = max(worst, sum(len(w) for w, c in zip(words, covered) if c) / total)
        stats.hist("duplicate_fraction", worst, 0.0, 1.0, 20)
        return "repetitive" if worst > self.settings.max_duplicate_fraction else None


def make_corpus(path: Path, docs: int, seed: int = 0) -> None:
    """~1.5 KB documents of random common words; every fourth repeats a passage (and is dropped)."""
    rng = random.Random(seed)
    vocab = ("the of and to in is was for on that with as by at from it this be are an or have not which one had "
             "were but all their has there been when more would who its into other model data text corpus").split()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(docs):
            words = [rng.choice(vocab) for _ in range(rng.randint(200, 300))]
            if i % 4 == 0:
                words += words[:120]
            f.write(json.dumps({"id": f"d{i}", "text": " ".join(words)}) + "\n")


def outputs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for folder in ("data", "dropped") for p in sorted((out / folder).glob("*")) if p.is_file()}


def timed_runs(policy, corpus: Path, work: Path, configs: list, repeats: int) -> tuple[dict, list]:
    """Fastest wall time of each (engine, workers); rounds interleave the configurations so that a change of
    load on a shared machine hits all of them alike."""
    from fmaudit.pipeline.runner import run_filter

    best, files = {c: float("inf") for c in configs}, []
    for r in range(repeats):
        for engine, workers in configs:
            out = work / f"{engine}-{workers}-{r}"
            t0 = time.perf_counter()
            run_filter(policy, [corpus], out, workers=workers, engine=engine, progress=False)
            best[engine, workers] = min(best[engine, workers], time.perf_counter() - t0)
            files.append(outputs(out))
            shutil.rmtree(out)
    return best, files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=100)
    args = parser.parse_args()

    import ray

    from fmaudit.policy import policy_from_dict

    policy = policy_from_dict({"name": "scaling", "pipeline": {"shard_size": args.shard_size, "samples": 0},
                               "stages": [{"stage": "bench_repetition"}]})
    work = Path(tempfile.mkdtemp(prefix="fmaudit-scaling-"))
    try:
        corpus = work / "corpus.jsonl"
        make_corpus(corpus, args.docs)
        print(f"{args.docs} documents, {args.shard_size} per shard; {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} at start")
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=max(WORKER_COUNTS), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        ray_start = time.perf_counter() - t0
        configs = [(engine, workers) for engine in ("local", "ray") for workers in WORKER_COUNTS]
        walls, files = timed_runs(policy, corpus, work, configs, args.repeats)
        rates = {c: args.docs / wall for c, wall in walls.items()}
        for (engine, workers), wall in walls.items():
            print(f"{engine:5s} {workers} worker(s): {wall:6.2f} s  {rates[engine, workers]:8.1f} docs/s")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    eff = {e: rates[e, 2] / (2 * rates[e, 1]) for e in ("local", "ray")}
    ray_ratio = rates["local", 2] / rates["ray", 2]
    identical = int(all(f == files[0] for f in files) and bool(files[0]))
    print(f"scaling efficiency 1 -> 2 workers: local {eff['local']:.2f}, ray {eff['ray']:.2f}")
    print(f"Ray wall time / local wall time, 2 workers: {ray_ratio:.2f}; Ray start (not in the runs): {ray_start:.1f} s")
    print(f"efficiency={eff['ray']:.2f} local_efficiency={eff['local']:.2f} ray_ratio={ray_ratio:.2f} "
          f"ray_start_s={ray_start:.1f} identical={identical} docs={args.docs} cores={os.cpu_count()}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
