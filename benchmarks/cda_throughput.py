"""Price of grammar-aware counterfactuals: documents/s of the ``cda`` stage against a plain regex word swap.

Both swap the same gender pairs and first names over the same ~1 KB documents, on one core. The regex swap
looks each word up in the same lists and maps it to its first listed counterpart (so ``her`` always becomes
``him``, "Rachel Prince" becomes "... Princess", "man" the verb becomes "woman"); the stage tags and parses the
sentences that need grammar. Documents are joined demo-corpus documents (``fmaudit.demo``), so some hold
gendered sentences and some none; the figures are given for all of them and for the gendered ones alone (the
worst case: every document needs spaCy). ``agreement`` is the share of gendered documents where the regex swap
writes the same counterfactual as the stage.

Times are CPU seconds of this one process (``time.process_time``; BLAS limited to one thread), so documents/s
are per core and hold on a machine shared with other jobs.

    python benchmarks/cda_throughput.py [--docs 1000] [--parser/--no-parser]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 256  # documents per Stage.process call, as the runner's default batch_size


def make_documents(n: int, seed: int = 0, size: int = 1000) -> list[str]:
    """``n`` documents of about ``size`` characters, each made of consecutive demo-corpus documents."""
    from faker import Faker

    from fmaudit.demo.corpus import make_document

    rng, fake = random.Random(seed), Faker("en_US")
    fake.seed_instance(seed)
    docs, i = [], 0
    while len(docs) < n:
        parts: list[str] = []
        while sum(map(len, parts)) < size:
            parts.append(make_document(i, rng, fake)[0]["text"])
            i += 1
        docs.append(" ".join(parts)[: int(size * 1.2)])
    return docs


def dense_documents(n: int, seed: int = 0, size: int = 1000) -> list[str]:
    """Worst case: ~1 KB documents made only of the demo's gendered sentences (every sentence is parsed)."""
    from fmaudit.demo.text import GENDERED

    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        parts: list[str] = []
        while sum(map(len, parts)) < size:
            parts.append(rng.choice(GENDERED))
        docs.append(" ".join(parts))
    return docs


def regex_swapper():
    """A plain word swap over the stage's own lists: every listed word to its first counterpart, case kept."""
    from fmaudit.cda import GENDER_PAIRS, GENDERED_NAMES, load_pairs
    from fmaudit.cda.wordlists import apply_case

    words, names = load_pairs(GENDER_PAIRS), load_pairs(GENDERED_NAMES, True)

    def swap(m: re.Match) -> str:
        w = m.group()
        term = words.lookup(w) or names.lookup(w)
        return apply_case(w, term.target) if term else w

    word = re.compile(r"[^\W\d_]+")
    return lambda text: word.sub(swap, text)


def time_stage(stage, docs) -> tuple[float, list[str]]:
    from fmaudit.corpus import Document
    from fmaudit.stats import StageStats

    stats = StageStats()
    batches = [[Document(f"d{i + j}", t) for j, t in enumerate(docs[i:i + BATCH])] for i in range(0, len(docs), BATCH)]
    stage.process(batches[0][:16], stats)  # warm-up: spaCy caches and the report samples' anonymizer
    out: list[str] = []
    t0 = time.process_time()
    for batch in batches:
        res = stage.process(batch, stats)
        twins = {d.meta["counterfactual_of"]: d.text for d in res.added}
        out.extend(twins.get(d.id, d.text) for d in res.kept)
    return time.process_time() - t0, out


def main() -> None:
    from fmaudit.cda import GENDERED_NAMES, GENDER_PAIRS, load_pairs
    from fmaudit.stages.cda import Cda, CdaSettings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--parser", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()

    docs = make_documents(args.docs)
    words, names = load_pairs(GENDER_PAIRS), load_pairs(GENDERED_NAMES, True)
    word = re.compile(r"[^\W\d_]+")
    gendered = [d for d in docs if any(words.lookup(w) or names.lookup(w) for w in word.findall(d))]
    stage = Cda(CdaSettings(mode="augment", parser=args.parser))
    stage.setup()
    regex = regex_swapper()

    t0 = time.process_time()
    regex_out = [regex(d) for d in docs]
    regex_s = time.process_time() - t0
    stage_s, _ = time_stage(stage, docs)
    stage_g_s, stage_g_out = time_stage(stage, gendered)
    dense = dense_documents(max(1, len(docs) // 4))
    stage_d_s, _ = time_stage(stage, dense)
    regex_g = [regex(d) for d in gendered]
    agreement = sum(a == b for a, b in zip(regex_g, stage_g_out)) / max(1, len(gendered))

    mean_chars = sum(map(len, docs)) / len(docs)
    print(f"documents: {len(docs)} (mean {mean_chars:.0f} chars), {len(gendered)} with gendered terms; "
          f"one core; parser={'on' if args.parser else 'off'}")
    print(f"regex word swap:   {len(docs) / regex_s:9.0f} docs/s")
    print(f"cda stage:         {len(docs) / stage_s:9.0f} docs/s (all documents)")
    print(f"cda stage:         {len(gendered) / stage_g_s:9.0f} docs/s (gendered documents only)")
    print(f"cda stage:         {len(dense) / stage_d_s:9.0f} docs/s (worst case: every sentence gendered)")
    print(f"regex output equals the stage's on {agreement:.1%} of gendered documents")
    print(f"ratio={(len(regex_out) / regex_s) / (len(docs) / stage_s):.1f} docs_per_s={len(docs) / stage_s:.0f} "
          f"docs_per_s_gendered={len(gendered) / stage_g_s:.0f} docs_per_s_dense={len(dense) / stage_d_s:.0f} "
          f"agreement={agreement:.3f}")


if __name__ == "__main__":
    main()
