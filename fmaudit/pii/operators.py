"""Rewriting the PII found in a document with presidio-anonymizer operators.

Built-in presidio operators do replace (typed tags), mask and salted hash; encryption is AES-SIV
(:mod:`fmaudit.pii.cipher`: deterministic and authenticated by default); the pseudonymizer is a presidio custom operator that draws Faker surrogates, seeded so the same value gets
the same surrogate within a document (and, with a key, across the corpus).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Callable, Optional

from fmaudit.pii.cipher import ENCRYPTED, decrypt_tokens, encrypt_value
from fmaudit.pii.keys import PiiKey
from fmaudit.pii.specs import OperatorSpec
from fmaudit.pii.spans import Span
from fmaudit.text.pii_marks import hashed_tag, tag

__all__ = ["ENCRYPTED", "Pseudonymizer", "Rewriter", "decrypt_text"]


def _faker_surrogate(fake, entity_type: str, value: str) -> Optional[str]:
    """A realistic stand-in of the same kind (and roughly the same shape) as ``value``; None if none fits."""
    one_word = len(value.split()) == 1
    makers: dict[str, Callable[[], str]] = {
        "PERSON": lambda: fake.first_name() if one_word else f"{fake.first_name()} {fake.last_name()}",
        "EMAIL_ADDRESS": fake.email,
        "PHONE_NUMBER": fake.phone_number,
        "CREDIT_CARD": fake.credit_card_number,
        "IBAN_CODE": fake.iban,
        "IP_ADDRESS": lambda: fake.ipv6() if ":" in value else fake.ipv4_public(),
        "US_SSN": fake.ssn,
        "ADDRESS": lambda: fake.address() if "\n" in value else fake.address().replace("\n", ", "),
        "LOCATION": fake.city,
        "DATE_TIME": fake.date,
        "URL": fake.url,
        "ORGANIZATION": fake.company,
        "US_PASSPORT": fake.passport_number,
        "US_BANK_NUMBER": lambda: fake.numerify("#" * max(8, min(17, sum(c.isdigit() for c in value)))),
        "US_DRIVER_LICENSE": lambda: fake.bothify("?#######").upper(),
    }
    make = makers.get(entity_type)
    return make() if make else None


class Pseudonymizer:
    """Faker surrogates, consistent within one document (and across the corpus when a key is given).

    With a key, the seed is an HMAC of the value, so the same person gets the same surrogate everywhere
    and nobody without the key can tell which value a surrogate stands for. Without a key, the seed is
    the document id and the value's rank of appearance, so the surrogate says nothing about the value.
    """

    def __init__(self, key: Optional[PiiKey], locale: str = "en_US"):
        from faker import Faker

        self.fake = Faker(locale)
        self.seed_key = key.pseudonym_seed if key else None

    def for_document(self, doc_id: str) -> Callable[[str, str], str]:
        memo: dict[tuple[str, str], str] = {}

        def surrogate(entity_type: str, value: str) -> str:
            norm = (entity_type, " ".join(value.split()).casefold())
            if norm not in memo:
                memo[norm] = self._draw(doc_id, entity_type, value, len(memo))
            return memo[norm]

        return surrogate

    def _draw(self, doc_id: str, entity_type: str, value: str, rank: int) -> str:
        if self.seed_key is not None:
            material = hmac.new(self.seed_key, f"{entity_type}\0{' '.join(value.split()).casefold()}".encode(),
                                hashlib.sha256).digest()
        else:
            material = hashlib.sha256(f"{doc_id}\0{entity_type}\0{rank}".encode()).digest()
        seed = int.from_bytes(material[:8], "big")
        for attempt in range(5):
            self.fake.seed_instance(seed + attempt)
            out = _faker_surrogate(self.fake, entity_type, value)
            if out is None:
                return tag(entity_type)
            if out.casefold() != value.casefold():
                return out
        return tag(entity_type)


class Rewriter:
    """Applies each entity type's operator to a document's findings through presidio's AnonymizerEngine."""

    def __init__(self, settings, key: Optional[PiiKey]):
        from presidio_anonymizer import AnonymizerEngine

        self.settings = settings
        self.key = key
        self.engine = AnonymizerEngine()
        self.pseudonymizer = Pseudonymizer(key)

    def _config(self, entity_type: str, spec: OperatorSpec, surrogate):
        from presidio_anonymizer.entities import OperatorConfig
        from presidio_anonymizer.operators import Hash

        op = spec.operator
        if op == "replace":
            return OperatorConfig("replace", {"new_value": tag(entity_type)})
        if op == "keep":
            return OperatorConfig("keep")
        if op == "mask":
            def mask(value: str) -> str:
                visible = len(value) - min(spec.keep_last, len(value))
                return spec.masking_char * visible + value[visible:]

            return OperatorConfig("custom", {"lambda": mask})
        if op == "hash":
            salt = self.key.hash_salt
            return OperatorConfig("custom", {"lambda": lambda v: hashed_tag(entity_type,
                                                                            Hash().operate(v, {"salt": salt}))})
        if op == "encrypt":
            secret, mode = self.key.secret, spec.encryption
            return OperatorConfig("custom", {"lambda": lambda v: encrypt_value(secret, entity_type, v, mode)})
        return OperatorConfig("custom", {"lambda": lambda v: surrogate(entity_type, v)})

    def rewrite(self, doc_id: str, text: str, spans: list[Span]) -> str:
        """``text`` with every span rewritten by its entity type's operator."""
        return self.rewrite_with_spans(doc_id, text, spans)[0]

    def rewrite_with_spans(self, doc_id: str, text: str, spans: list[Span]) -> tuple[str, list[list[int]]]:
        """``text`` rewritten, and the sorted ``[start, end]`` of every rewritten value in the new text (what
        later stages must leave as it is, :mod:`fmaudit.text.pii_marks`)."""
        if not spans:
            return text, []
        from presidio_analyzer import RecognizerResult

        surrogate = self.pseudonymizer.for_document(doc_id)
        types = {s.entity_type for s in spans}
        operators = {t: self._config(t, self.settings.operator_for(t), surrogate) for t in types}
        results = [RecognizerResult(s.entity_type, s.start, s.end, s.score) for s in spans]
        out = self.engine.anonymize(text, results, operators, merge_entities_with_spaces=False)
        return out.text, sorted([item.start, item.end] for item in out.items)


def decrypt_text(text: str, key: PiiKey, on_error=None) -> tuple[str, int]:
    """``text`` with every ``<ENC:TYPE:...>`` token decrypted; also the number of tokens decrypted.
    Raises :class:`fmaudit.pii.cipher.WrongKey` or ``DamagedToken`` (see :func:`fmaudit.pii.cipher.decrypt_tokens`
    for ``on_error``)."""
    return decrypt_tokens(text, key.secret, on_error)
