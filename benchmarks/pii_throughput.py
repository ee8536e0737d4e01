"""Speed of the ``pii`` stage's analysis against naive per-document presidio, and whether it finds the same.

Naive: presidio's ``AnalyzerEngine`` (spaCy ``en_core_web_sm``, the same custom recognizers and entity list as
the policy's ``pii`` section) calling ``analyze`` once per document, as presidio's documentation shows. Stage:
:class:`fmaudit.pii.analyze.BatchAnalyzer` on batches of documents (NER only, batched ``nlp.pipe``, lemmas only
where context words are looked for, digit prefilter, numpy BLAS), first in this process on one core, then in
one worker process per core as the pipeline runs it (steady state: models loaded before the clock starts).
The three are timed in alternating rounds over slices of the documents, so a shared machine's load falls
on all of them alike; each ratio is the median of the rounds' ratios.
``identical`` is the share of documents whose findings (start, end, entity type) are exactly the naive ones;
the findings that differ are listed by who found them (the NER focus skips lone ordinary words opening a
sentence, which the model sometimes tags PERSON: "Mulch keeps the roots cool").
Documents are ~1 KB, made of consecutive demo-corpus documents (so about a third of the text carries PII), or
with ``--texts packages`` paragraphs of the installed packages' descriptions (real prose, code, names, URLs).

    python benchmarks/pii_throughput.py [--docs 400] [--texts demo|packages] [--policy policies/default.yaml]
                                        [--workers N] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 128  # documents per Stage.process call (the demo policy's batch_size)


def documents(n: int, seed: int = 0, size: int = 1000) -> list[str]:
    """``n`` texts of about ``size`` characters, each joined from consecutive demo-corpus documents."""
    from faker import Faker

    from fmaudit.demo.corpus import make_document

    rng, fake = random.Random(seed), Faker("en_US")
    fake.seed_instance(seed)
    out, i, parts = [], 0, []
    while len(out) < n:
        parts.append(make_document(i, rng, fake)[0]["text"])
        i += 1
        if sum(map(len, parts)) >= size:
            out.append(" ".join(parts))
            parts = []
    return out


def package_texts(n: int, lo: int = 300, hi: int = 3000) -> list[str]:
    """Real English (with code, names and addresses) found on any machine: paragraphs of the long descriptions
    in the installed packages' METADATA files."""
    import re
    import sysconfig

    out = []
    for path in sorted(Path(sysconfig.get_paths()["purelib"]).glob("*.dist-info/METADATA")):
        body = path.read_text(encoding="utf-8", errors="replace").split("\n\n", 1)[-1]
        for para in re.split(r"\n\s*\n", body):
            para = para.strip()
            if lo < len(para) < hi and sum(c.isalpha() for c in para) > 0.6 * len(para):
                out.append(para)
                if len(out) == n:
                    return out
    return out


def spans(results) -> list[tuple[int, int, str]]:
    return sorted((r.start, r.end, r.entity_type) for r in results)


def naive_analyzer(settings):
    """Presidio as documented: one AnalyzerEngine, ``analyze`` per document."""
    from fmaudit.pii.analyze import add_policy_recognizers
    from fmaudit.text.nlp import presidio_analyzer

    engine = presidio_analyzer(settings.spacy_model, settings.language)
    add_policy_recognizers(engine, settings, focus=False)  # the same recognizers, run as presidio runs them

    def run(texts: list[str]) -> list:
        return [spans(engine.analyze(text=t, language=settings.language, entities=settings.all_entities(),
                                     score_threshold=settings.score_threshold,
                                     allow_list=settings.allow_list or None)) for t in texts]

    run(documents(3, seed=99))
    return run


_ANALYZER = None


def _init(settings) -> None:
    global _ANALYZER
    from fmaudit.pii.analyze import BatchAnalyzer

    _ANALYZER = BatchAnalyzer(settings)
    _ANALYZER.analyze(documents(3, seed=99))


def _ready(_) -> bool:
    time.sleep(1.0)  # holds this worker so that every worker starts (and loads its models) before timing
    return True


def _batch(texts: list[str]) -> tuple[float, list]:
    """Findings of a batch, and the CPU seconds this process spent on it."""
    c0 = time.process_time()
    found = [spans(r) for r in _ANALYZER.analyze(texts)]
    return time.process_time() - c0, found


def timed(fn, *args) -> tuple[float, float, list]:
    """Wall seconds, CPU seconds (of whichever processes did the work) and result of ``fn(*args)``."""
    t0 = time.perf_counter()
    cpu, out = fn(*args)
    return time.perf_counter() - t0, cpu, out


def _in_process(fn):
    def run(part):
        c0 = time.process_time()
        out = fn(part)
        return time.process_time() - c0, out
    return run


def _batches(part: list[str], size: int) -> list[list[str]]:
    return [part[i:i + size] for i in range(0, len(part), size)]


def _merge(results) -> tuple[float, list]:
    cpu, found = 0.0, []
    for c, f in results:
        cpu += c
        found.extend(f)
    return cpu, found


def compare(settings, texts: list[str], workers: int, rounds: int) -> dict:
    """Seconds and findings of each way, measured in alternating rounds over slices of the documents, so that
    load from other processes on a shared machine weighs on all three alike."""
    import multiprocessing as mp

    naive = naive_analyzer(settings)
    _init(settings)
    ways = {
        "naive": _in_process(naive),
        "stage_1core": lambda part: _merge(_batch(b) for b in _batches(part, BATCH)),
        "stage_workers": lambda part: _merge(pool.map(_batch, _batches(part, BATCH // 2))),
    }
    seconds: dict[str, list[float]] = {k: [] for k in ways}
    cpu: dict[str, list[float]] = {k: [] for k in ways}
    found: dict[str, list] = {k: [] for k in ways}
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init,
                             initargs=(settings,)) as pool:
        list(pool.map(_ready, range(workers)))
        step = -(-len(texts) // rounds)
        for lo in range(0, len(texts), step):
            for name, fn in ways.items():
                dt, dc, out = timed(fn, texts[lo:lo + step])
                seconds[name].append(dt)
                cpu[name].append(dc)
                found[name].extend(out)
    return {"seconds": seconds, "cpu": cpu, "found": found}


def main() -> None:
    from fmaudit.policy import load_policy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--policy", default=str(Path(__file__).resolve().parents[1] / "policies" / "default.yaml"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=4, help="alternations of the three measurements")
    ap.add_argument("--texts", choices=("demo", "packages"), default="demo",
                    help="demo: ~1 KB texts joined from demo-corpus documents; packages: paragraphs of installed "
                         "packages' descriptions (real prose and code)")
    args = ap.parse_args()
    settings = next(s.settings for s in load_policy(args.policy).stages if s.name == "pii")
    texts = documents(args.docs) if args.texts == "demo" else package_texts(args.docs)
    chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} documents, {chars:.0f} characters on average; entities: {', '.join(settings.all_entities())}")

    res = compare(settings, texts, args.workers, args.rounds)
    seconds, cpu = res["seconds"], res["cpu"]
    rates = {k: len(texts) / sum(v) for k, v in seconds.items()}

    def median_ratio(times: dict[str, list[float]], way: str) -> float:
        return statistics.median(n / w for n, w in zip(times["naive"], times[way]))

    ref, one, pool = (res["found"][k] for k in ("naive", "stage_1core", "stage_workers"))
    same_one = sum(a == b for a, b in zip(ref, one)) / len(texts)
    same_pool = sum(a == b for a, b in zip(ref, pool)) / len(texts)
    ratio, ratio_workers, cpu_ratio = (median_ratio(seconds, "stage_1core"), median_ratio(seconds, "stage_workers"),
                                       median_ratio(cpu, "stage_1core"))
    print(f"naive presidio, per document, 1 process:   {rates['naive']:7.1f} docs/s")
    print(f"pii stage analysis, 1 process:             {rates['stage_1core']:7.1f} docs/s  "
          f"(x{ratio:.2f} median of {len(seconds['naive'])} rounds, identical {same_one:.4f})")
    print(f"pii stage analysis, {args.workers} worker processes:     {rates['stage_workers']:7.1f} docs/s  "
          f"(x{ratio_workers:.2f}, identical {same_pool:.4f})")
    print(f"CPU seconds per document: naive {sum(cpu['naive']) / len(texts) * 1e3:.1f} ms, stage "
          f"{sum(cpu['stage_1core']) / len(texts) * 1e3:.1f} ms (x{cpu_ratio:.2f}; load-independent: with N free "
          f"cores the stage's N workers reach about N times that)")
    differ = Counter()
    for text, a, b in zip(texts, ref, one):
        differ.update(f"naive only {t} {text[s:e]!r}" for s, e, t in set(a) - set(b))
        differ.update(f"stage only {t} {text[s:e]!r}" for s, e, t in set(b) - set(a))
    for what, n in differ.most_common(10):
        print(f"  differs: {what} x{n}")
    # ratio: like with like, one process each; ratio_workers: the stage's worker pool against one naive process
    print(f"docs_s_naive={rates['naive']:.1f} docs_s_stage={rates['stage_1core']:.1f} workers={args.workers} "
          f"ratio={ratio:.2f} cpu_ratio={cpu_ratio:.2f} ratio_workers={ratio_workers:.2f} "
          f"identical={min(same_one, same_pool):.4f}")

if __name__ == "__main__":
    main()
