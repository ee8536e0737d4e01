"""The demo's downstream task: occupation from short biographies, with a planted group disparity.

``write_bios_task(path, rows, seed)`` writes a CSV of ``text, occupation, gender, age_band``. The occupation
(``engineer`` or ``teacher``) is told by the work sentences of the biography (a few biographies hold only
generic sentences); gender shows in the pronouns. The planted disparity: ``engineer`` is the occupation of
``RATE["male"]`` of the men and ``RATE["female"]`` of the women, so a classifier that learns the data's
correlation between pronouns and occupation selects men more often. ``age_band`` (under_40, 40_plus) shifts
the rate a little too, for intersectional groups. The same seed gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

RATE = {"male": 0.7, "female": 0.3}  # P(engineer | gender)
AGE_SHIFT = {"under_40": 0.05, "40_plus": -0.05}
AMBIGUOUS = 0.15  # share of biographies with no work sentence

WORK = {
    "engineer": ["{P} designs load-bearing structures for bridges and tunnels.",
                 "{P} writes control software for industrial robots.",
                 "{P} tests circuit boards before they go into production.",
                 "{P} leads a team that builds water treatment plants.",
                 "{P} studied mechanical engineering and now works on wind turbines.",
                 "{P} spends most days debugging firmware and reviewing schematics.",
                 "{P} calculates tolerances for aircraft engine parts."],
    "teacher": ["{P} teaches mathematics to a class of fourth graders.",
                "{P} grades essays late into the evening during exam season.",
                "{P} coaches the school debate team after lessons.",
                "{P} prepares reading lessons for children who are learning English.",
                "{P} studied education and now runs a primary school classroom.",
                "{P} organises field trips to the science museum for the pupils.",
                "{P} meets parents every term to talk about their children's progress."],
}
GENERIC = ["{P} lives in {city} with two cats.", "{P} enjoys long walks on weekends.",
           "In {p2} free time {p} plays the piano.", "{P} has volunteered at the local food bank for years.",
           "{P} likes to cook for friends on Sundays.", "{P} is learning to speak Italian."]
CITIES = ["Leeds", "Porto", "Lyon", "Austin", "Tampere", "Ghent", "Cork", "Graz", "Turin", "Malmo"]
PRONOUNS = {"male": ("He", "he", "his"), "female": ("She", "she", "her")}
AGES = {"under_40": (23, 39), "40_plus": (40, 64)}


def make_bio(rng: random.Random) -> dict:
    gender = rng.choice(sorted(RATE))
    age_band = rng.choice(sorted(AGES))
    occupation = "engineer" if rng.random() < RATE[gender] + AGE_SHIFT[age_band] else "teacher"
    P, p, p2 = PRONOUNS[gender]
    fill = lambda s: s.format(P=P, p=p, p2=p2, city=rng.choice(CITIES))  # noqa: E731
    age = rng.randint(*AGES[age_band])
    rest = [fill(s) for s in rng.sample(GENERIC, k=rng.choice((1, 2)))]
    if rng.random() >= AMBIGUOUS:
        rest += [fill(s) for s in rng.sample(WORK[occupation], k=rng.choice((1, 2)))]
    rng.shuffle(rest)
    parts = [f"{P} is {age} years old and works in {rng.choice(CITIES)}.", *rest]
    return {"text": " ".join(parts), "occupation": occupation, "gender": gender, "age_band": age_band}


def write_bios_task(path: str | Path, rows: int = 1200, seed: int = 0) -> Path:
    """Write the task CSV (``text, occupation, gender, age_band``); returns its path."""
    rng = random.Random(seed)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["text", "occupation", "gender", "age_band"], lineterminator="\n")
    w.writeheader()
    for _ in range(rows):
        w.writerow(make_bio(rng))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path
