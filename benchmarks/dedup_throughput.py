"""Deduplication speed: MinHash signatures against a plain per-document ``datasketch.MinHash`` loop, and
the global step's time and peak memory at three corpus sizes.

Signatures: the same random-vocabulary documents (80-240 words) are normalised and cut into the same
word 5-gram shingles by both; the baseline hashes each shingle with datasketch's default (sha1) and
updates one ``datasketch.MinHash`` per document (``update_batch``), fmaudit hashes and permutes a whole
batch of 256 documents in numpy (:mod:`fmaudit.dedup`). Rounds are interleaved and the ratio is the
median over rounds of baseline time / fmaudit time (CPU seconds of this process, BLAS on one thread).
``identical`` is the share of documents whose fmaudit signature equals datasketch's bit for bit when
datasketch is given fmaudit's shingle hash (``hashfunc=fmaudit.dedup.shingle_hash``): same scheme.

Global step: corpora of ``--sizes`` documents (a fifth of them planted edited copies) are signed into
shards of 1,000 documents, then :func:`fmaudit.dedup.global_step.find_duplicates` spills the band keys to
disk, reads them back one partition (at most ``--max-rows`` rows) at a time, verifies candidates by exact
Jaccard and clusters them. Peak memory is tracemalloc's peak (Python and numpy allocations) during that step.

    python benchmarks/dedup_throughput.py [--docs 2000] [--rounds 3] [--sizes 2000,8000,32000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fmaudit.dedup import MinHasher, Normalizer, Shingler, optimal_params, shingle_hash  # noqa: E402
from fmaudit.dedup.global_step import find_duplicates  # noqa: E402
from fmaudit.dedup.signatures import near_arrays  # noqa: E402
from fmaudit.dedup.store import SignatureStore, write_shard  # noqa: E402
from fmaudit.dedup.synthetic import planted_corpus  # noqa: E402

NUM_PERM, SEED, THRESHOLD, BATCH, SHARD = 128, 1, 0.8, 256, 1000


def fmaudit_signatures(texts, norm, shingler, hasher):
    out = []
    for start in range(0, len(texts), BATCH):
        hashes, offsets = shingler.hashes([norm(t) for t in texts[start:start + BATCH]])
        out.append(hasher.signatures(hashes, offsets))
    return out


def datasketch_signatures(texts, norm, shingler, hashfunc=None):
    from datasketch import MinHash

    out = []
    for text in texts:
        m = MinHash(NUM_PERM, seed=SEED) if hashfunc is None else MinHash(NUM_PERM, seed=SEED, hashfunc=hashfunc)
        shingles = shingler.iter_shingles(norm(text))
        m.update_batch([s.encode("utf-8") for s in shingles] if hashfunc is None else list(shingles))
        out.append(m.hashvalues)
    return out


def timed(fn, *args) -> float:
    t0 = time.process_time()
    fn(*args)
    return time.process_time() - t0


def global_step(n: int, max_rows: int) -> dict:
    texts, _ = planted_corpus(int(n / 1.2), share=0.2, seed=n)
    norm, shingler, hasher = Normalizer(), Shingler("word", 5), MinHasher(NUM_PERM, SEED)
    bands, rows = optimal_params(THRESHOLD, NUM_PERM)
    with tempfile.TemporaryDirectory() as tmp:
        shards = 0
        for start in range(0, len(texts), SHARD):
            chunk = texts[start:start + SHARD]
            ids = [f"doc-{start + i}" for i in range(len(chunk))]
            write_shard(Path(tmp) / "sig", shards, ids, near_arrays(ids, chunk, norm, shingler, hasher, bands, rows))
            shards += 1
        tracemalloc.start()
        t0 = time.perf_counter()
        result = find_duplicates(SignatureStore(Path(tmp) / "sig", shards), Path(tmp) / "work", keep="first",
                                 threshold=THRESHOLD, max_rows=max_rows)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {"docs": len(texts), "seconds": seconds, "peak_mb": peak / 2 ** 20, "dropped": len(result.duplicates),
            "partitions": result.partitions, "spill_mb": result.spill_bytes / 2 ** 20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="2000,8000,32000")
    ap.add_argument("--max-rows", type=int, default=1 << 14, help="rows per spilled partition read at once")
    args = ap.parse_args()

    texts, _ = planted_corpus(args.docs, share=0.0, seed=1)
    norm, shingler, hasher = Normalizer(), Shingler("word", 5), MinHasher(NUM_PERM, SEED)
    fmaudit_signatures(texts[:BATCH], norm, shingler, hasher)  # warm the power tables
    ratios, ours, theirs = [], [], []
    for _ in range(args.rounds):
        base = timed(datasketch_signatures, texts, norm, shingler)
        mine = timed(fmaudit_signatures, texts, norm, shingler, hasher)
        ratios.append(base / mine)
        ours.append(len(texts) / mine)
        theirs.append(len(texts) / base)
    check = texts[:200]
    reference = datasketch_signatures(check, norm, shingler, shingle_hash)
    mine = [row for block in fmaudit_signatures(check, norm, shingler, hasher) for row in block]
    identical = sum(bool((a == b).all()) for a, b in zip(reference, mine)) / len(check)
    ratio = statistics.median(ratios)
    print(f"signatures: fmaudit {statistics.median(ours):.0f} docs/s, datasketch {statistics.median(theirs):.0f} "
          f"docs/s, median ratio {ratio:.2f} over {args.rounds} rounds; identical to datasketch: {identical:.4f}")

    sizes = [int(s) for s in args.sizes.split(",")]
    figures = {}
    for n in sizes:
        g = global_step(n, args.max_rows)
        print(f"global step: {g['docs']} docs in {g['seconds']:.2f} s, peak {g['peak_mb']:.1f} MiB, "
              f"{g['partitions']} partitions ({g['spill_mb']:.1f} MiB spilled), {g['dropped']} duplicates dropped")
        figures[n] = g
    tail = " ".join(f"global_s_{n}={g['seconds']:.2f} peak_mb_{n}={g['peak_mb']:.1f}" for n, g in figures.items())
    print(f"ratio={ratio:.2f} identical={identical:.4f} docs_per_s={statistics.median(ours):.0f} {tail}")


if __name__ == "__main__":
    main()
