"""Recognizers for PII written the way much of the world writes it (each one a setting of the pii stage).

* :class:`NameListRecognizer` (``name_locales``): PERSON from Faker's first- and last-name lists of many
  countries. A run of capitalized words is a name when it has a known first name and a known last name
  ("Faina D. Yefremova"), or when a label or phrase says so ("my name is Rubija", "Name: Sieda Batukayev",
  "Dear Jakab", a signature line after "Regards,"). A single known name without such context is left to
  spaCy's NER: "Will" or "Rose" alone are ordinary words.
* :class:`LabelledValueRecognizer` (``label_recognizers``): the value after a label ("Phone:", "Tel",
  "Address:", "IBAN", "Name:"), up to the next label or the end of the line.
* :class:`StreetAddressRecognizer` (``street_addresses``): street addresses in common European and
  Latin-American layouts: a street name with its type word (``utca``, ``tér``, ``katu``, ``straße``, ``rue``,
  ``calle``, ``via`` ...) and house number, a number before or after the name, a unit, then city, region,
  country and postcode segments ("233 Erzsébet tér 19., Suite 282, Domoszló, Hungary 34796").

Phone numbers in national formats are presidio's libphonenumber recognizer run for ``phone_regions``
(:func:`fmaudit.pii.recognizers.focus_phone_recognizers`).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache

CAP = r"[^\W\d_](?:[^\W\d_]|['’\-](?=[^\W\d_]))*"  # a word of any script, hyphens and apostrophes inside
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-](?=[^\W\d_]))*\.?")
# Particles inside family names: "Benício da Cunha", "Ludwig van Beethoven".
PARTICLES = frozenset({"da", "de", "del", "della", "di", "do", "dos", "das", "du", "la", "le", "van", "von", "der",
                       "den", "ter", "y", "bin", "al", "el", "zu"})
NAME_CONTEXT = re.compile(
    r"(?:\bmy name is|\bname\s*[:=]|\bi am|\bi'm|\bthis is|\bcontact|\bdear|\bhi|\bhello|\bthanks,|\bregards,|"
    r"\bsincerely,|\bcheers,|\bsigned|\bmr\.?|\bmrs\.?|\bms\.?|\bdr\.?)\s*$", re.IGNORECASE)

STREET_TYPES = (
    "utca|út|útja|tér|tere|körút|köz|sor|sétány|katu|tie|kuja|polku|kaari|raitti|väylä|straße|strasse|str\\.|weg|"
    "gasse|allee|platz|ring|damm|ufer|laan|straat|gracht|singel|plein|kade|vej|gade|allé|gatan|vägen|gata|stigen|"
    "veien|gate|veg|stræde|ulica|ul\\.|aleja|náměstí|třída|cesta|ulice|street|st\\.|road|rd\\.|avenue|ave\\.|lane|"
    "drive|court|square|boulevard")
STREET_PREFIXES = (
    "rue|avenue|av\\.|boulevard|bd|chemin|allée|impasse|place|quai|calle|avenida|avda\\.|plaza|paseo|camino|carrera|"
    "carrer|ronda|travesía|via|viale|piazza|corso|largo|vicolo|strada|borgo|contrada|rua|travessa|alameda|praça|"
    "estrada|rodovia|aleja|ulica|ul\\.|bulevardul|strada|calea|piața|sokak|caddesi|cadde|bulvarı|diagonal|callejón|"
    "cuesta|acceso|retorno|corredor|intrarea|soseaua|șoseaua|quadra|rotonda|cr\\.|cl\\.|carrera|transversal")
_UNIT = r"(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Piso|Puerta|Appartamento|Interno|Wohnung|lgh|Étage|Bloc|" \
        r"Andar|Sala|Oficina|Depto\.?|Dpto\.?|Dto\.?|No\.?|Nr\.?|Nº|N°|#|Bl\.|Sc\.|Ap\.|Et\.|Edif\.|Torre|Piano|" \
        r"Etapa|Interior|Int\.|Casa|Lote|Manzana|Bloque|Portal|Escalera)\s*\d{1,5}[A-Za-z]?(?:-\d{1,4})?"
_NUM = r"(?:N°\s?|Nr\.\s?|No\.\s?)?\d{1,5}(?:\s?[A-Za-z](?![^\W\d_]))?(?:[/-]\d{1,4})?\.?"
POSTCODE = r"(?:[A-Z]{1,2}-)?\d{2,6}(?:[ -]\d{2,4})?(?:\s?[A-Z]{2}(?![^\W\d_]))?"
_CAPS = rf"(?:{CAP}\.?\s+){{0,3}}"
_START = r"(?<![^\W\d_'’\-])"  # not inside a word
STREET = re.compile(
    rf"{_START}(?:(?<![\w.,])\d{{1,5}},?\s+)?"                                      # a number before the street
    rf"(?:(?i:{STREET_PREFIXES})\s+(?:(?i:de|del|de la|di|da|do|dos|des|du)\s+)?{_CAPS}{CAP}"  # rue X, calle Y
    rf"|{_CAPS}{CAP}?(?i:{STREET_TYPES})(?![^\W\d_])"                        # X utca, Koskikatu, Hauptstraße
    rf"|{_CAPS}{CAP}\s+(?i:{STREET_TYPES})(?![^\W\d_]))"
    rf",?\s+{_NUM}"                                                          # the house number after it
    rf"(?:,?\s+{_UNIT})*")
STREET_WORD = re.compile(rf"(?i:(?:{STREET_PREFIXES})\s|(?:{STREET_TYPES})(?![^\W\d_]))")
# A street named without a type word, known by what follows: "Kamaufova 6b, 87648 Komiža" (number after the
# street, postcode before the city) or "Cuesta Débora Jover 261, Huelva, 12543" (city, then postcode).
STREET_BY_POSTCODE = re.compile(
    rf"{_START}{_CAPS}{CAP}\s+{_NUM}(?:,?\s+{_UNIT})*\s?,\s+(?:{POSTCODE},?\s+{CAP}|{CAP}(?:\s+{CAP}){{0,2}},\s+{POSTCODE}\b)")
# After the street: up to four ", segment" parts that look like an address's (city, region, country, postcode).
_SEGMENT = re.compile(rf"[ \t]?,[ \t]*(?:{_UNIT}|[A-Z]{{1,3}}-?\d{{3,6}}(?:[ -]?[A-Z0-9]{{2,4}})?|{POSTCODE}(?:[ \t]{CAP}(?:[ \t-]{CAP}){{0,3}})?"
                      rf"|\(?[^\W\d_]{{2,}}\)?(?:[ -][^\W\d_]{{2,}}){{0,3}})(?:[ \t]\d{{4,6}}(?:-\d{{3,4}})?)?"
                      rf"(?:[ \t](?:/[ \t])?\(?[A-Z]{{2,3}}\)?(?![^\W\d_]))?")


@lru_cache(maxsize=8)
def faker_names(locales: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """First names and last names of Faker's person providers for ``locales`` (parts of compound names too)."""
    from faker import Faker

    first: set[str] = set()
    last: set[str] = set()
    for locale in locales:
        provider = Faker(locale).provider("faker.providers.person")
        for attr, into in (("first_names", first), ("first_names_male", first), ("first_names_female", first),
                           ("last_names", last)):
            for name in getattr(provider, attr, ()) or ():
                for part in re.split(r"[\s\-]+", str(name)):
                    if len(part) > 1 and part[0].isupper():
                        into.add(part)
    return frozenset(first), frozenset(last)


def _presidio_base():
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    return EntityRecognizer, RecognizerResult


class NameListRecognizer:
    """Factory of the PERSON recognizer (a presidio ``EntityRecognizer``); see the module docstring."""

    def __new__(cls, locales: list[str], common_word, language: str = "en", score: float = 0.85):
        EntityRecognizer, RecognizerResult = _presidio_base()
        first, last = faker_names(tuple(locales))

        class _Names(EntityRecognizer):
            def load(self) -> None:
                pass

            def analyze(self, text, entities, nlp_artifacts=None):
                return [RecognizerResult("PERSON", s, e, score) for s, e in name_spans(text, first, last, common_word)]

        return _Names(supported_entities=["PERSON"], supported_language=language, name="faker_name_lists")


def _runs(text: str):
    """Runs of capitalized words joined by single spaces (with initials and name particles inside, a possessive
    ending the run), as lists of (start, end, word)."""
    run: list[tuple[int, int, str]] = []
    for m in _WORD.finditer(text):
        word, end = m.group(), m.end()
        capital = word[0].isupper() and not text.startswith(":", end)  # "Phone:" is a label, not a name
        if run and (not (capital or word in PARTICLES) or text[run[-1][1]:m.start()] != " "):
            yield run
            run = []
        if not (capital or run):
            continue
        possessive = word.endswith(("'s", "’s"))
        if possessive:
            word, end = word[:-2], end - 2
        run.append((m.start(), end, word))
        if possessive:
            yield run
            run = []
    if run:
        yield run


STRONG_CONTEXT = re.compile(r"(?:\bmy name is|\bname\s*[:=]|\bsigned|\bregards,|\bsincerely,)\s*$", re.IGNORECASE)


def name_spans(text: str, first: frozenset[str], last: frozenset[str], common_word) -> list[tuple[int, int]]:
    """Spans of ``text`` that are names by the lists and the context rules of :class:`NameListRecognizer`."""
    out = []
    for run in _runs(text):
        words = [w.rstrip(".") for _, _, w in run]
        known = [w in first or w in last for w in words]
        lo, hi = 0, len(run)
        while lo < hi and not known[lo]:  # "Call Maria Lopez": the name starts at the first known name
            lo += 1
        while hi > lo and not known[hi - 1]:
            hi -= 1
        if len(words) == 3 and len(words[1]) == 1 and not (common_word(words[0]) or common_word(words[2])):
            out.append((run[0][0], _end(run[-1])))  # "Faina D. Yefremova": an initial between two proper nouns
            continue
        before = text[max(0, run[0][0] - 24):run[0][0]]
        if lo == hi or lo > 0:  # nothing known, or words before the name: context rules only on a clean run
            if STRONG_CONTEXT.search(before) and len(run) <= 3 and not any(common_word(w) for w in words):
                out.append((run[0][0], _end(run[-1])))
            if lo == hi:
                continue
        inner = words[lo:hi]
        kinds = [w in first for w in inner], [w in last for w in inner]
        filler = all(k or len(w) == 1 or w in PARTICLES for w, k in zip(inner, known[lo:hi]))
        two_part = len(inner) >= 2 and kinds[0][0] and any(kinds[1][1:]) and filler
        labelled = bool(NAME_CONTEXT.search(text[max(0, run[lo][0] - 24):run[lo][0]]))
        if two_part or (labelled and filler and not (len(inner) == 1 and common_word(inner[0]))):
            out.append((run[lo][0], _end(run[hi - 1])))
    return sorted(set(out))


def _end(token: tuple[int, int, str]) -> int:
    start, end, word = token
    return end - 1 if word.endswith(".") and len(word) > 2 else end


def _segment_end(text: str, pos: int, limit: int = 4) -> int:
    for _ in range(limit):
        m = _SEGMENT.match(text, pos)
        if not m:
            break
        pos = m.end()
    return pos


_TOKEN = re.compile(r"\S+")
_DIGITS = re.compile(r"\d+")
# Bounds (with room to spare) on a street match, in blank-separated tokens: it starts at most TOKENS_BEFORE tokens
# before the token holding its first digit (a number before the street, prefix, particles, up to four capitalized
# words, N°: 8 at most) and ends at most TOKENS_AFTER after the token holding its last digit (a letter suffix, a
# postcode's city: 2 at most); its digits are at most four tokens apart (units, "Apt. 864"; a postcode).
TOKENS_BEFORE, TOKENS_AFTER = 12, 4


def digit_reach(text: str) -> list[tuple[int, int]]:
    """Disjoint stretches of ``text`` that hold every match of :data:`STREET` and :data:`STREET_BY_POSTCODE`.

    Both patterns need a house number, so a match lies within TOKENS_BEFORE tokens before and TOKENS_AFTER
    tokens after digits of its own, and stretches around digit runs less than TOKENS_BEFORE + TOKENS_AFTER tokens
    apart are merged, so each match lies inside one stretch. Searching each stretch (``finditer(text, lo, hi)``: the look-behinds still see the text
    before ``lo``, and every stretch ends at a blank or the end) finds exactly the matches of searching the whole
    text, at a fraction of the cost on prose with few numbers (the patterns try dozens of street words at every
    word)."""
    if not _DIGITS.search(text):
        return []
    starts, ends = [], []
    for m in _TOKEN.finditer(text):
        starts.append(m.start())
        ends.append(m.end())
    out: list[list[int]] = []
    last = len(starts) - 1
    for m in _DIGITS.finditer(text):
        k = bisect_right(starts, m.start()) - 1
        lo, hi = max(0, k - TOKENS_BEFORE), min(last, k + TOKENS_AFTER)
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(starts[a], ends[b]) for a, b in out]


def street_spans(text: str) -> list[tuple[int, int]]:
    """Spans of street addresses (street with house number, then the segments after it)."""
    out = []
    reach = digit_reach(text)
    # STREET needs a street word (a prefix and a blank, or a type word that ends a word): stretches with none
    # are skipped, found by one cheap search instead of the pattern's tries at every word
    worded = [(lo, hi) for lo, hi in reach if STREET_WORD.search(text, lo, hi)]
    for pattern, stretches in ((STREET, worded), (STREET_BY_POSTCODE, reach)):
        for m in (m for lo, hi in stretches for m in pattern.finditer(text, lo, hi)):
            start = m.start()
            if pattern is STREET_BY_POSTCODE:  # "Ann moved to Kamaufova 6b, ...": the words after the last
                digit = next(i for i in range(start, m.end()) if text[i].isdigit())  # lowercase one before the number
                lower = [w.end() for w in re.finditer(r"[^\W\d_]+\s+", text[start:digit]) if w.group()[0].islower()]
                start += lower[-1] if lower else 0
                if not re.findall(r"[^\W\d_]+", m.group())[-1][0].isupper():
                    continue  # the city after the postcode is a proper noun ("Chapter 3, 2010 edition" is not)
            else:  # "the parcel to Ligetfalvai utca 27.": from the first word that is not ordinary lowercase text
                while (w := _LEAD.match(text, start, m.end())) and not _PREFIX.fullmatch(w.group(1)):
                    start = w.end()
            if any(c.isdigit() for c in text[start:m.end()]):
                out.append((start, _segment_end(text, m.end())))
    from fmaudit.text.pii_marks import merge

    return merge(out)


_LEAD = re.compile(r"([^\W\d_A-ZÀ-ÖØ-ÞĀ-ſ][^\W\d_]*)\s+")  # a word starting in lower case, and its blanks
_PREFIX = re.compile(rf"(?i:{STREET_PREFIXES})")


class StreetAddressRecognizer:
    """Factory of the ADDRESS recognizer over :data:`STREET` (a presidio ``EntityRecognizer``)."""

    def __new__(cls, language: str = "en", score: float = 0.7):
        EntityRecognizer, RecognizerResult = _presidio_base()

        class _Streets(EntityRecognizer):
            def load(self) -> None:
                pass

            def analyze(self, text, entities, nlp_artifacts=None):
                return [RecognizerResult("ADDRESS", s, e, score) for s, e in street_spans(text)]

        return _Streets(supported_entities=["ADDRESS"], supported_language=language, name="street_addresses")


# Labels and the shape of the value after them, per entity type.
LABELS = {
    "PHONE_NUMBER": (r"phone(?:\s*(?:number|no\.?))?|tel(?:ephone)?\.?|mobile|cell(?:phone)?|fax|call(?: me)?(?: at)?"
                     r"|messages to|text(?: me)?(?: at)?|whatsapp|telefon|teléfono|téléphone|telefone|puhelin",
                     r"\+?\(?\d[\d\s().\-/]{4,18}\d"),
    "IBAN_CODE": (r"iban", r"[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){10,32}"),
    "ADDRESS": (r"address|addr\.|adresse|dirección|direccion|indirizzo|endereço|osoite|cím|adres",
                r"[^\n;|]{6,120}?(?=\s+(?:phone|tel|e-?mail|iban|name)\b|\s*[\n;|]|\s*$)"),
    "PERSON": (r"name|full name|contact person|nombre|nom|nome",
               rf"{CAP}(?:[ \t]+(?:{CAP}\.?|[A-Z]\.)(?![^\W\d_]|[ \t]*:)){{0,3}}"),
}


class LabelledValueRecognizer:
    """Factory of a recognizer of the values after :data:`LABELS` (a presidio ``EntityRecognizer``)."""

    def __new__(cls, entity_types: list[str], language: str = "en", score: float = 0.8):
        EntityRecognizer, RecognizerResult = _presidio_base()
        patterns = {t: re.compile(rf"\b(?:{LABELS[t][0]})\s*[:=#.-]?\s*(?:is\s+|to\s+)?({LABELS[t][1]})",
                                  re.IGNORECASE if t != "PERSON" else 0)
                    for t in entity_types if t in LABELS}
        label_ci = {t: re.compile(rf"\b(?:{LABELS[t][0]})\s*[:=]\s*({LABELS[t][1]})", re.IGNORECASE)
                    for t in patterns if t == "PERSON"}

        class _Labelled(EntityRecognizer):
            def load(self) -> None:
                pass

            def analyze(self, text, entities, nlp_artifacts=None):
                out = []
                for t in entities:
                    pattern = label_ci.get(t) or patterns.get(t)
                    if pattern is None:
                        continue
                    for m in pattern.finditer(text):
                        value = m.group(1)
                        if t == "PERSON" and not value[:1].isupper():
                            continue
                        out.append(RecognizerResult(t, m.start(1), m.start(1) + len(value.rstrip(" .,")), score))
                return out

        return _Labelled(supported_entities=sorted(patterns), supported_language=language, name="labelled_values")
