"""A labelled, seeded set of short international texts for the pii stage's recall and precision.

English sentences (the pii stage's language) holding names, phone numbers, street addresses, e-mails, IBANs
and card numbers made by Faker's non-English locales, with the character span of every value; and PII-free
texts that mention cities, countries, companies, dates and numbers (what the stage must leave alone).
:func:`evaluate` scores the stage's analysis on them: recall per type is the share of a type's identifying
words (words of two or more letters, and numbers) that fall inside a finding; precision per found type is the
share of findings that overlap a labelled value; ``altered_clean`` counts PII-free texts with any finding.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

LOCALES = ("de_DE", "fr_FR", "es_ES", "it_IT", "hu_HU", "fi_FI", "pl_PL", "pt_BR", "es_MX", "nl_NL", "sv_SE",
           "cs_CZ", "da_DK", "no_NO", "ro_RO", "hr_HR", "es_CO", "es_AR", "pt_PT", "de_AT")
TITLES = ("Cautionary Tales", "Collected Letters", "Early Poems", "Garden Diaries", "Winter Notes")
PII_TEMPLATES = (
    "My name is {first}.",
    "{name}'s {title} was published last year.",
    "Name: {name} Phone: {phone}",
    "I would like to stop receiving messages to {phone}.",
    "Please ship the parcel to {address}.",
    "Contact {name} at {email} for the details.",
    "Transfer the deposit to IBAN {iban}, account holder {name}.",
    "The card {card} was charged twice this month.",
    "Address: {address}\nTel: {phone}",
    "Hi, this is {name}; call me back on {phone}.",
    "Thanks for your help.\nBest regards,\n{name}",
    "{name} moved to {address} in the spring.",
    "You can reach me on {phone} after six.",
    "Our new tenant, {name}, lives at {address}.",
)
CLEAN_TEMPLATES = (
    "The conference in {city} drew about 300 people in {year}.",
    "{company} reported higher sales in the third quarter.",
    "Room {n} is on the second floor, next to the library.",
    "The train to {city} leaves at 10:45 from platform {small}.",
    "We visited {country} twice and loved the food.",
    "The museum opens at 9 on Mondays and closes at {small} pm.",
    "Prices rose by {small} percent between {year} and {year2}.",
    "The report covers {n} schools in {country}.",
    "Chapter {small} explains how the river shaped {city}.",
    "Order {n} shipped on Tuesday and arrived on Friday.",
)
TYPES = ("PERSON", "PHONE_NUMBER", "ADDRESS", "EMAIL_ADDRESS", "IBAN_CODE", "CREDIT_CARD")
_IDENTIFYING = re.compile(r"[^\W\d_]{2,}|\d+")


@dataclass
class Case:
    text: str
    labels: list[dict] = field(default_factory=list)  # {"start", "end", "entity_type", "value", "locale"}


def _fill(template: str, values: dict[str, tuple[str, str | None]]) -> Case:
    """``template`` with each ``{slot}`` replaced; labelled slots recorded with their spans."""
    out, labels, pos = [], [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(template[pos:m.start()])
        value, entity_type = values[m.group(1)]
        start = sum(map(len, out))
        out.append(value)
        if entity_type:
            labels.append({"start": start, "end": start + len(value), "entity_type": entity_type, "value": value})
        pos = m.end()
    out.append(template[pos:])
    return Case("".join(out), labels)


def generate_cases(n_pii: int = 300, n_clean: int = 80, seed: int = 0) -> list[Case]:
    """``n_pii`` texts with labelled PII and ``n_clean`` without, in a seeded order."""
    from faker import Faker

    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in LOCALES}
    for i, f in enumerate(fakers.values()):
        f.seed_instance(seed * 1000 + i)
        address = f.provider("faker.providers.address")
        if isinstance(getattr(address, "cities", None), list):  # it_IT builds it from a set: its order (so the
            address.cities = sorted(address.cities)            # seeded pick) would change with the hash seed
    cases = []
    for k in range(n_pii):
        loc = LOCALES[k % len(LOCALES)]
        f = fakers[loc]
        values = {
            "first": (f.first_name(), "PERSON"),
            "name": (f"{f.first_name()} {f.last_name()}", "PERSON"),
            "phone": (f.phone_number(), "PHONE_NUMBER"),
            "address": (f.address().replace("\n", ", "), "ADDRESS"),
            "email": (f.email(), "EMAIL_ADDRESS"),
            "iban": (f.iban(), "IBAN_CODE"),
            "card": (f.credit_card_number(), "CREDIT_CARD"),
            "title": (rng.choice(TITLES), None),
        }
        case = _fill(PII_TEMPLATES[k % len(PII_TEMPLATES)], values)
        for label in case.labels:
            label["locale"] = loc
        cases.append(case)
    for k in range(n_clean):
        f = fakers[LOCALES[k % len(LOCALES)]]
        year = rng.randint(1950, 2020)
        values = {"city": (f.city(), None), "country": (f.country(), None), "company": (f.company(), None),
                  "year": (str(year), None), "year2": (str(year + rng.randint(1, 9)), None),
                  "n": (str(rng.randint(100, 999)), None), "small": (str(rng.randint(2, 12)), None)}
        cases.append(_fill(CLEAN_TEMPLATES[k % len(CLEAN_TEMPLATES)], values))
    rng.shuffle(cases)
    return cases


def evaluate(cases: list[Case], found: list[list[tuple[int, int, str]]]) -> dict:
    """Recall per labelled type, precision per found type and PII-free texts altered, for ``found``: each
    case's findings as (start, end, entity_type)."""
    words = {t: [0, 0] for t in TYPES}  # identifying words: [inside a finding, all]
    precision: dict[str, list[int]] = {}
    altered = clean = 0
    for case, spans in zip(cases, found):
        if not case.labels:
            clean += 1
            altered += bool(spans)
        for label in case.labels:
            for m in _IDENTIFYING.finditer(case.text, label["start"], label["end"]):
                hit = any(s <= m.start() and m.end() <= e for s, e, _ in spans)
                words[label["entity_type"]][0] += hit
                words[label["entity_type"]][1] += 1
        for s, e, t in spans:
            tally = precision.setdefault(t, [0, 0])
            tally[0] += any(s < lab["end"] and lab["start"] < e for lab in case.labels)
            tally[1] += 1
    hits, total = sum(v[0] for v in words.values()), sum(v[1] for v in words.values())
    return {
        "recall_by_type": {t: {"words": n, "recall": h / n if n else None} for t, (h, n) in words.items()},
        "recall": hits / total if total else None,
        "precision_by_type": {t: {"found": n, "precision": h / n} for t, (h, n) in sorted(precision.items())},
        "altered_clean": altered, "clean": clean, "cases": len(cases),
    }


def analyze_cases(settings, cases: list[Case]) -> list[list[tuple[int, int, str]]]:
    """The pii stage's findings on each case (its analyzer, span resolution and title widening)."""
    from fmaudit.pii.analyze import BatchAnalyzer
    from fmaudit.pii.spans import resolve_spans, widen_person_spans

    analyzer = BatchAnalyzer(settings)
    out = []
    for case, results in zip(cases, analyzer.analyze([c.text for c in cases])):
        spans = resolve_spans(results)
        if settings.person_titles:
            spans = widen_person_spans(case.text, spans)
        out.append([(s.start, s.end, s.entity_type) for s in spans])
    return out
