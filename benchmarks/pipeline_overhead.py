"""Runner overhead: documents/s of `fmaudit filter` with a no-op stage against a plain read-and-write loop.

The baseline parses and writes with the same library as the runner (orjson) and skips records without
text, in a fresh process like the runner; the same loop with the standard library's json is printed
beside it. Rounds are interleaved and the ratio is the median of per-round ratios. Both read the same
JSONL file and write every document back as JSONL; the runner adds validation,
quarantine, duplicate-id detection, sharding, atomic commits, a manifest with sha256 and reports, and its
start-up is timed too. It runs with one worker (the in-process engine) and with one worker process per
core: a no-op stage has nothing to parallelise, so the second figure shows what the process pool costs
(shipping shards between processes) and is the one that grows with real stages. Also prints the driver's
peak memory for the corpus and for one four times larger (flat memory).

    python benchmarks/pipeline_overhead.py [--docs 50000] [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_corpus(path: Path, docs: int, seed: int = 0) -> None:
    import random

    rng = random.Random(seed)
    words = [w for w in "the of and to in is was for on that with as by at from it this be are an or have not "
             "which one had were but all their has there been when more would who its into other".split()]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(docs):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(120, 220)))  # ~1 KB
            f.write(json.dumps({"id": f"d{i}", "text": text, "meta": {"source": "bench"}}) + "\n")


PLAIN_LOOP = """
import sys, time
import {lib} as json
t = time.perf_counter()
n = 0
with open(sys.argv[1], "rb") as fin, open(sys.argv[2], "wb") as fout:
    for line in fin:
        doc = json.loads(line)
        if isinstance(doc, dict) and isinstance(doc.get("text"), str):
            fout.write({dump} + b"\\n")
            n += 1
print(time.perf_counter() - t, n)
"""


def plain_loop(src: Path, dst: Path, lib: str) -> tuple[float, int]:
    """Wall seconds (process start-up excluded, as for the runner) and documents of a plain loop using ``lib``."""
    dump = "json.dumps(doc)" if lib == "orjson" else "json.dumps(doc, ensure_ascii=False).encode()"
    dst.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([sys.executable, "-c", PLAIN_LOOP.format(lib=lib, dump=dump), str(src), str(dst)],
                         capture_output=True, text=True, check=True)
    seconds, n = res.stdout.split()
    return float(seconds), int(n)


def run_fmaudit(policy: Path, src: Path, out: Path, workers: int) -> tuple[float, float]:
    """Wall seconds of `fmaudit filter` in a fresh process; returns (seconds, peak RSS MiB of the driver)."""
    code = ("import resource, sys, time; from fmaudit.cli import main; t=time.perf_counter(); rc=main(sys.argv[1:]); "
            "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, "filter", "--policy", str(policy), str(src), "--out", str(out),
                          "--workers", str(workers), "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    seconds, rss = res.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes of the second run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fmaudit-bench-"))
    try:
        src, big = tmp / "c.jsonl", tmp / "big" / "c.jsonl"
        make_corpus(src, args.docs)
        make_corpus(big, args.docs * 4, seed=1)
        policy = tmp / "noop.yaml"
        policy.write_text("version: 1\nname: bench\npipeline: {shard_size: 5000, samples: 0}\nstages:\n"
                          "  - stage: noop\n")
        rounds: list[dict] = []
        for i in range(args.rounds):  # interleaved: the machine may be shared
            r = {}
            r["orjson"], n = plain_loop(src, tmp / "plain" / "out.jsonl", "orjson")
            r["fm1"], rss = run_fmaudit(policy, src, tmp / f"fm1-{i}", 1)
            r["json"], _ = plain_loop(src, tmp / "plain" / "out.jsonl", "json")
            r["fmn"], _ = run_fmaudit(policy, src, tmp / f"fmn-{i}", args.workers)
            rounds.append(r)
        _, rss_big = run_fmaudit(policy, big, tmp / "fm-big", 1)
        med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        ratio = statistics.median(r["orjson"] / r["fm1"] for r in rounds)
        ratio_json = statistics.median(r["json"] / r["fm1"] for r in rounds)
        ratio_n = statistics.median(r["orjson"] / r["fmn"] for r in rounds)
        size_mb = src.stat().st_size / 2**20
        print(f"corpus: {n} documents, {size_mb:.0f} MiB; {args.rounds} interleaved rounds, medians")
        print(f"plain loop, orjson:                {n / med['orjson']:8.0f} docs/s ({med['orjson']:.2f} s)")
        print(f"plain loop, stdlib json:           {n / med['json']:8.0f} docs/s ({med['json']:.2f} s)")
        print(f"fmaudit filter, noop, 1 worker:    {n / med['fm1']:8.0f} docs/s ({med['fm1']:.2f} s, start-up and reports included)")
        print(f"fmaudit filter, noop, {args.workers} processes:  {n / med['fmn']:8.0f} docs/s ({med['fmn']:.2f} s)")
        print(f"driver peak RSS: {rss:.0f} MiB at {n} docs, {rss_big:.0f} MiB at {4 * n} docs")
        print(f"ratio={ratio:.2f} ratio_stdlib_json={ratio_json:.2f} ratio_{args.workers}_workers={ratio_n:.2f} "
              f"docs_per_s={n / med['fm1']:.0f} orjson_docs_per_s={n / med['orjson']:.0f} "
              f"rss_growth_4x={rss_big / rss:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
