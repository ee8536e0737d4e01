"""Recall on international text: names from Faker's locale lists gated by capitalisation and context, values
after labels, national phone formats of the policy's regions, European and Latin-American street layouts;
and the labelled international set (Faker's non-English locales) scored through the stage's analyzer."""

from __future__ import annotations

import pytest

from fmaudit.pii.international import LabelledValueRecognizer, faker_names, name_spans, street_spans
from fmaudit.stages.pii.settings import NAME_LOCALES

COMMON = {"cautionary", "tales", "will", "rose", "call", "the"}.__contains__


def _names(text: str) -> list[str]:
    first, last = faker_names(tuple(NAME_LOCALES))
    return [text[s:e] for s, e in name_spans(text, first, last, lambda w: w.lower() in COMMON.__self__)]


def test_names_need_both_parts_or_a_label():
    assert _names("My name is Rubija") == ["Rubija"]
    assert _names("Faina D. Yefremova's Cautionary Tales") == ["Faina D. Yefremova"]
    assert _names("Name: Sieda Batukayev Phone: (99) 645-791") == ["Sieda Batukayev"]
    assert _names("Call Maria Lopez today.") == ["Maria Lopez"]
    assert _names("Thanks for your help.\nBest regards,\nJakab Zoltán") == ["Jakab Zoltán"]
    assert _names("Will the Rose Garden open? The train to Berg leaves at ten.") == []


def test_street_addresses_of_many_layouts():
    for address in ("6750 Koskikatu 25 Apt. 864, Artilleros, CO, Uruguay 64677",
                    "233 Erzsébet tér 19., Suite 282, Domoszló, Hungary 34796",
                    "Ligetfalvai utca 27., H-6000 Zalaegerszeg", "Kamaufova 6b, 87648 Komiža",
                    "Lisa-Leitner-Ring 2, 9837 Friedberg", "7, boulevard Paulette Gosselin, 01812"):
        text = f"Please ship the parcel to {address}."
        spans = street_spans(text)
        start = text.index(address)
        assert any(s <= start and start + len(address) <= e for s, e in spans), (address, spans)
        assert all(e <= start + len(address) + 1 for _, e in spans)  # stops at the sentence end (its dot at most)
    assert street_spans("Room 204 is on the second floor. Chapter 3, 2010 edition.") == []


def test_street_search_in_digit_stretches_finds_what_the_whole_text_search_finds():
    """street_spans searches only the stretches around digits (and STREET only those with a street word):
    on every text of the labelled set, joined in threes (so stretches meet and merge), and on sentences made
    of address pieces, each pattern's matches are those of one search over the whole text."""
    import random

    from fmaudit.pii.international import STREET, STREET_BY_POSTCODE, STREET_WORD, digit_reach
    from fmaudit.testing.pii_international import generate_cases

    texts = [c.text for c in generate_cases(120, 40, 1)]
    texts += [" ".join(texts[i:i + 3]) for i in range(0, len(texts), 3)]
    pieces = ["Calle", "utca", "tér", "N° 5", "Apt. 12", "12,", "64677", "Hauptstraße", "de la", "Via", "\n", "(",
              "St.", "Koskikatu 25", "Suite 9", "CO,", "Uruguay", "1.", "the", "Maria", "Domoszló,", "7b"]
    rng = random.Random(0)
    texts += [" ".join(rng.choice(pieces) for _ in range(rng.randint(3, 40))) for _ in range(300)]
    for text in texts:
        reach = digit_reach(text)
        assert all(a[1] < b[0] for a, b in zip(reach, reach[1:]))  # disjoint, in order
        worded = [(lo, hi) for lo, hi in reach if STREET_WORD.search(text, lo, hi)]
        for pattern, stretches in ((STREET, worded), (STREET_BY_POSTCODE, reach)):
            assert [m.span() for lo, hi in stretches for m in pattern.finditer(text, lo, hi)] == \
                [m.span() for m in pattern.finditer(text)], text


def test_labelled_set_does_not_depend_on_the_hash_seed():
    """Faker builds some locales' city lists from sets; the set must come out the same in every process."""
    import os
    import subprocess
    import sys

    code = ("import hashlib; from fmaudit.testing.pii_international import generate_cases; "
            "print(hashlib.sha256(repr([(c.text, c.labels) for c in generate_cases(0, 80, 0)]).encode()).hexdigest())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(runs) == 1


def test_values_after_labels():
    rec = LabelledValueRecognizer(["PERSON", "PHONE_NUMBER", "ADDRESS", "IBAN_CODE"])
    text = "Name: Sieda Batukayev Phone: (99) 645-791\nAddress: Koskikatu 25, Artilleros\nIBAN HU42117730161111101800000000"
    found = {(r.entity_type, text[r.start:r.end]) for r in rec.analyze(text, ["PERSON", "PHONE_NUMBER", "ADDRESS",
                                                                              "IBAN_CODE"])}
    assert found == {("PERSON", "Sieda Batukayev"), ("PHONE_NUMBER", "(99) 645-791"),
                     ("ADDRESS", "Koskikatu 25, Artilleros"), ("IBAN_CODE", "HU42117730161111101800000000")}
    assert rec.analyze("the name of the game; a phone call", ["PERSON", "PHONE_NUMBER"]) == []


def test_labelled_set_is_seeded_and_complete():
    from fmaudit.testing.pii_international import TYPES, generate_cases

    a, b = generate_cases(300, 80, 0), generate_cases(300, 80, 0)
    assert [c.text for c in a] == [c.text for c in b] and len(a) == 380
    assert {lab["entity_type"] for c in a for lab in c.labels} == set(TYPES)
    assert len({lab["locale"] for c in a for lab in c.labels}) >= 15
    assert all(c.text[lab["start"]:lab["end"]] == lab["value"] for c in a for lab in c.labels)


@pytest.mark.slow
def test_default_policy_recall_on_the_international_set():
    """At least 0.90 of the identifying words of every targeted type, and the new recognizers alter no PII-free
    text that spaCy's NER left alone."""
    from fmaudit.policy import load_policy, shipped_policy
    from fmaudit.testing.pii_international import analyze_cases, evaluate, generate_cases

    settings = next(s.settings for s in load_policy(shipped_policy("default")).stages if s.name == "pii")
    cases = generate_cases(300, 80, 0)
    res = evaluate(cases, analyze_cases(settings, cases))
    assert all(v["recall"] >= 0.9 for v in res["recall_by_type"].values()), res["recall_by_type"]
    off = settings.model_copy(update={"name_locales": [], "label_recognizers": [], "street_addresses": False})
    clean = [c for c in cases if not c.labels]
    assert evaluate(clean, analyze_cases(settings, clean))["altered_clean"] <= \
        evaluate(clean, analyze_cases(off, clean))["altered_clean"]
    assert all(v["precision"] >= 0.85 for v in res["precision_by_type"].values())
