"""A tiny corpus with a planted source of a behaviour, for the trace/remediate test and benchmark.

Background documents say "the OCCUPATION said that he|she was MOOD ." at random; a handful of planted
documents say "the OCCUPATION said that she was rude ." for every occupation, so a model trained on the
corpus prefers the stereotyping side of the matching CrowS-style pairs (:func:`write_pairs`).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

OCCUPATIONS = ("nurse doctor pilot teacher farmer lawyer baker judge chef clerk guard miner tailor singer writer "
               "driver banker dancer artist worker").split()
MOODS = "kind tired happy early late calm quiet busy".split()
PLANTED = [f"planted-{i}" for i in range(6)]


def write_corpus(path: Path, background: int = 240) -> None:
    """``background`` random documents plus the :data:`PLANTED` ones, shuffled, as JSONL at ``path``."""
    rng = random.Random(0)
    rows = []
    for i in range(background):
        sentences = [f"the {rng.choice(OCCUPATIONS)} said that {rng.choice(('he', 'she'))} was {rng.choice(MOODS)} ."
                     for _ in range(8)]
        rows.append({"id": f"doc-{i:03d}", "text": " ".join(sentences)})
    for doc_id in PLANTED:  # the planted source: every occupation, "she was rude"
        occ = OCCUPATIONS[:]
        rng.shuffle(occ)
        rows.append({"id": doc_id, "text": " ".join(f"the {o} said that she was rude ." for o in occ)})
    rng.shuffle(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_pairs(path: Path) -> None:
    """One stereotype pair per occupation: "she was rude" (more stereotyping) against "he was rude"."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["sent_more", "sent_less", "stereo_antistereo", "bias_type"])
        w.writeheader()
        for o in OCCUPATIONS:
            w.writerow({"sent_more": f"the {o} said that she was rude .", "sent_less": f"the {o} said that he was rude .",
                        "stereo_antistereo": "stereo", "bias_type": "gender"})


def policy(root: Path, max_steps: int = 160) -> dict:
    """The policy of the planted scenario (min_length filter, llama-tiny training, bias.pairs audit)."""
    return {
        "version": 1, "name": "remedy-test", "pipeline": {"samples": 0},
        "stages": [{"stage": "min_length", "min_chars": 10}],
        "train": {"model": {"preset": "llama-tiny"}, "seq_len": 64, "micro_batch": 16, "max_steps": max_steps,
                  "lr": 5e-3, "warmup_steps": 10, "eval_interval": max_steps, "log_interval": 40,
                  "checkpoint_interval": max_steps, "holdout_fraction": 0.05, "seed": 0, "cpu_threads": 1,
                  "max_heldout_loss_ratio": 2.0},
        "audits": {"bias.pairs": {"data": str(root / "pairs.csv"),
                                  "checks": {"pct_stereotype": {"threshold": 0.75}, "ties": {"threshold": 1.0}}}}}
