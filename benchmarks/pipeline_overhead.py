"""Runner overhead: `fmaudit filter` with a no-op stage against a plain read-and-write loop, as whole processes.

The baseline is the loop a user would write instead: parse each line with orjson (the runner's parser), skip
records without text, write each document back with orjson. The same loop with the standard library's json is
timed beside it. Both are timed as whole processes, from start to exit (interpreter start-up, imports and, for
the runner, its reports included), on the same JSONL file of documents of about 1.2 KB, large enough that the
per-document cost matters. Rounds are interleaved (the machine may be shared) and each ratio is the median of
the per-round ratios, baseline time over runner time (1.0: the runner costs nothing more). ``ratio`` uses wall
time; ``ratio_cpu`` the processes' CPU time (user + system), steadier on a loaded machine.

What the runner does beyond the loop: validates every record and quarantines malformed ones, finds duplicate
ids across files, checks the accounting of every stage, cuts shards and commits each atomically (resumable),
hashes inputs as they are read and writes a manifest of sha256s, statistics and reports. It runs with one worker
(the in-process engine) and with one worker process per core: a no-op stage has nothing to parallelise, so the
second figure shows what shipping shards between processes costs. Also prints the driver's peak memory for the
corpus and for one four times larger (flat memory).

How the runner reads and writes (since 2026-12-01, evening): the reader hands msgspec a 256 KiB block of whole
lines at a time, decoded straight into documents whose field types are what a block may hold (an id, a non-blank
text, a meta nested three levels at most: fmaudit/corpus/blocks.py); the checks on a block's ids and texts, and its
duplicate ids, run as maps over the block, and a plain file's lines are counted only where a line number is needed.
Any other block goes line by line through orjson, the reference (tests/test_corpus_blocks.py checks that both read
the same documents and lines). Documents are msgspec Structs, written by one encode call per 2048. With one worker,
each shard's commit (encode, sha256, write, rename, marker) runs on a thread while the next shard is read, and the
inputs are hashed on a thread, 4 MiB at a time: sha256 and writes release the GIL, so those threads cost nothing
where a core is free (``ratio_cpu`` counts them: it is the figure for a machine with no core to spare). The
process freezes its objects out of the garbage collector before it exits (the last collection was 0.13 s) and
collects its youngest objects every 50,000 allocations (start-up's collections found nothing, 0.03 to 0.05 s).

Figures (2026-12-01 19:49, load 1.0, 5 rounds): ratio=0.90 ratio_cpu=0.59 ratio_nested_meta=0.77
ratio_2_workers=0.48 ratio_stdlib_json=2.38; the runner 1.37 s wall and 1.64 s CPU against the orjson loop's 1.26 and
1.04; peak memory 81 MiB at 100k documents, 106 MiB at 400k. The same session read 0.73 before the fixed-cost work
below had all landed, 0.78 with the exit freeze, 0.80 to 0.81 with the collector's threshold and 256 KiB blocks.
Where the time goes now (perf, 100k documents): a one-document job is 0.5 to 0.6 s (the interpreter 0.05, pydantic
and the policy models 0.2, importlib.metadata 0.05 to 0.1, jinja2 for summary.html 0.04, yaml 0.03, msgspec 0.02); the
pass about 0.8 s wall and 1.0 s CPU (msgspec's decoding 0.18 and encoding 0.13, the two sha256s 0.18 and writing 0.12
on threads, reading 0.08, allocating and freeing the documents most of the rest). The per-document work is below the
loop's; what is left of the gap is the fixed cost. A meta with lists costs the decoder more (ratio_nested_meta). With
two processes, shards are pickled to the workers (about 9 us a document each way), more than a no-op stage saves.

History. At the start of 2026-12-01: ratio=0.35 (the stdlib baseline had flattered it). Then, the same day: hashes
of outputs taken as written; the reader's 64 KiB blocks (1 MiB ones left the cache); one entry-point scan; this
benchmark compiling fmaudit's bytecode first, as an installed package has it (a checkout run with
PYTHONDONTWRITEBYTECODE compiled some sixty modules at every start, 0.1 s): ratio=0.44 to 0.57. Then the fixed cost
(below) and the batch path above. Tried and dropped: encoding each kept document's line right after parsing it
(a shard then holds its bytes twice; 0.1 to 0.3 s more, and 190 MiB peak instead of 83); hashing each 64 KiB block
on a thread (0.25 s more CPU: the thread took the GIL back for every block); checking meta with msgspec.convert (a
copy of every meta; the decoder checks the types itself now); a blank-line scan instead of counting lines (as slow
as counting, 1 GB/s; counting only where needed replaced both).

Fixed cost of a job (a one-document corpus, the noop stage, one worker, `fmaudit filter` as a whole process,
bytecode compiled; 2026-12-01, 9 interleaved rounds at load 2.8, medians): 0.88 s wall, 0.87 s CPU, 1.60 G
instructions (valgrind) before; 0.70 s wall, 0.69 s CPU, 1.08 G after (at load 0.5 before: 0.76 s). -X importtime's
top items before: the worker, stages and settings chain 0.23 (pydantic), jsonschema 0.08 to 0.1, the CLI with
importlib.metadata 0.07, jinja2 0.04 to 0.05, the scorers' package 0.01. Changed: reports validated by the schema
compiled ahead of time by fastjsonschema (0.005 s), the parser built for the job's own CLI area only, no entry-point
scan for built-in names, package versions read from the metadata headers only, and the environment (git, versions)
gathered while the job loads. What is left is the libraries a job loads: pydantic and its first model 0.23 (with
its own entry-point scan for plug-ins), jinja2 for summary.html 0.04 (0.12 G instructions), yaml 0.03,
importlib.metadata 0.04, the interpreter 0.05.

    python benchmarks/pipeline_overhead.py [--docs 100000] [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORDS = ("the of and to in is was for on that with as by at from it this be are an or have not which one had were "
         "but all their has there been when more would who its into other people could time year about some then "
         "through between because government language training evaluation dataset model").split()


def make_corpus(path: Path, docs: int, seed: int = 0, nested: bool = False) -> None:
    """``docs`` JSONL documents of 140 to 300 words (about 1.2 KB a line), seeded; with ``nested``, each meta holds
    a list too, which the reader's batch path leaves to the per-line path."""
    import orjson

    rng = random.Random(seed)
    stream = [rng.choice(WORDS) for _ in range(1 << 16)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for i in range(docs):
            start, n = rng.randrange(len(stream) - 400), rng.randint(140, 300)
            meta = {"source": "bench", "n": i, **({"tags": ["a", str(i % 7)]} if nested else {})}
            f.write(orjson.dumps({"id": f"d{i}", "text": " ".join(stream[start:start + n]), "meta": meta},
                                 option=orjson.OPT_APPEND_NEWLINE))


PLAIN_LOOP = """
import sys
import {lib} as json
with open(sys.argv[1], "rb") as fin, open(sys.argv[2], "wb") as fout:
    for line in fin:
        doc = json.loads(line)
        if isinstance(doc, dict) and isinstance(doc.get("text"), str):
            fout.write({dump} + b"\\n")
"""


def timed(cmd: list[str], cwd: Path = ROOT) -> dict:
    """Run ``cmd`` to its end; its wall seconds, CPU seconds (user + system) and peak RSS in MiB."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{err.decode(errors='replace')}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def plain_loop(src: Path, dst: Path, lib: str) -> dict:
    dump = "json.dumps(doc)" if lib == "orjson" else "json.dumps(doc, ensure_ascii=False).encode()"
    dst.parent.mkdir(parents=True, exist_ok=True)
    return timed([sys.executable, "-c", PLAIN_LOOP.format(lib=lib, dump=dump), str(src), str(dst)])


def run_fmaudit(policy: Path, src: Path, out: Path, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)  # a fresh job each time (a finished one would be skipped)
    return timed([sys.executable, "-m", "fmaudit", "filter", "--policy", str(policy), str(src), "--out", str(out),
                  "--workers", str(workers), "--no-progress"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes of the second run")
    args = ap.parse_args()
    # fmaudit's modules as an installed package has them, compiled (pip compiles at install time); a checkout
    # run with PYTHONDONTWRITEBYTECODE set would otherwise compile some sixty modules at every start, 0.1 s here
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "fmaudit")], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="fmaudit-bench-"))
    try:
        src, big, nested = tmp / "c.jsonl", tmp / "big" / "c.jsonl", tmp / "nested" / "c.jsonl"
        make_corpus(src, args.docs)
        make_corpus(nested, args.docs, nested=True)
        policy = tmp / "noop.yaml"
        policy.write_text("version: 1\nname: bench\npipeline: {shard_size: 5000, samples: 0}\nstages:\n"
                          "  - stage: noop\n")
        runs = {"orjson": lambda: plain_loop(src, tmp / "plain" / "out.jsonl", "orjson"),
                "fm1": lambda: run_fmaudit(policy, src, tmp / "fm1", 1),
                "json": lambda: plain_loop(src, tmp / "plain" / "out.jsonl", "json"),
                "fmn": lambda: run_fmaudit(policy, src, tmp / "fmn", args.workers),
                "orjson_nested": lambda: plain_loop(nested, tmp / "plain" / "out.jsonl", "orjson"),
                "fm1_nested": lambda: run_fmaudit(policy, nested, tmp / "fm1n", 1)}
        rounds = [{name: run() for name, run in runs.items()} for _ in range(args.rounds)]  # interleaved
        written = sum(sum(1 for _ in open(p, "rb")) for p in (tmp / "fm1" / "data").glob("*.jsonl"))
        assert written == args.docs, f"the runner wrote {written} of {args.docs} documents"
        make_corpus(big, args.docs * 4, seed=1)
        rss_big = run_fmaudit(policy, big, tmp / "fm-big", 1)["rss"]

        def med(name: str, key: str = "wall") -> float:
            return statistics.median(r[name][key] for r in rounds)

        def ratio(base: str, runner: str, key: str = "wall") -> float:
            return statistics.median(r[base][key] / r[runner][key] for r in rounds)

        n, size_mb = args.docs, src.stat().st_size / 2**20
        print(f"corpus: {n} documents, {size_mb:.0f} MiB ({src.stat().st_size / n:.0f} bytes a line); "
              f"{args.rounds} interleaved rounds, whole processes, medians; load average {os.getloadavg()[0]:.1f}")
        for name, label in (("orjson", "plain loop, orjson"), ("json", "plain loop, stdlib json"),
                            ("fm1", "fmaudit filter, noop, 1 worker"),
                            ("fmn", f"fmaudit filter, noop, {args.workers} processes"),
                            ("orjson_nested", "nested meta: plain loop, orjson"),
                            ("fm1_nested", "nested meta: fmaudit, 1 worker")):
            print(f"{label:36s} {n / med(name):8.0f} docs/s (wall {med(name):.2f} s, cpu {med(name, 'cpu'):.2f} s)")
        rss = med("fm1", "rss")
        print(f"driver peak RSS: {rss:.0f} MiB at {n} docs, {rss_big:.0f} MiB at {4 * n} docs")
        print(f"ratio={ratio('orjson', 'fm1'):.2f} ratio_stdlib_json={ratio('json', 'fm1'):.2f} "
              f"ratio_cpu={ratio('orjson', 'fm1', 'cpu'):.2f} ratio_{args.workers}_workers={ratio('orjson', 'fmn'):.2f} "
              f"ratio_nested_meta={ratio('orjson_nested', 'fm1_nested'):.2f} "
              f"docs_per_s={n / med('fm1'):.0f} orjson_docs_per_s={n / med('orjson'):.0f} "
              f"rss_growth_4x={rss_big / rss:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
