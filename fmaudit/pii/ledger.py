"""The PII ledger: what was found, as keyed hashes of the values (never the values themselves).

One row per document and entity type: ``{"id", "entity_type", "operator", "count", "items": [{"start",
"end", "hash"}]}``. ``hash`` is HMAC-SHA256 (truncated to 128 bits) of the normalized value under a
sub-key of the secret key, so whoever holds the key can later test whether a trained model reproduces
a training-set value (hash the model's output the same way) while nobody without it learns the values.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import defaultdict

from fmaudit.pii.keys import PiiKey

# Types whose values are compared by their letters and digits only ("+1 (555) 010-2030" == "15550102030").
_ALNUM_TYPES = {"PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "US_BANK_NUMBER", "US_PASSPORT", "UK_NHS"}
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")


def normalize(entity_type: str, value: str) -> str:
    """The form of a value that is hashed: case and spacing (and for numbers, punctuation) do not matter."""
    if entity_type in _ALNUM_TYPES:
        return _NOT_ALNUM.sub("", value).upper()
    return " ".join(value.split()).casefold()


HASHED_ID = "hashed:"  # prefix of the ledger's id of a document whose id itself holds PII (see scan_ids)


def value_hash(key: PiiKey, entity_type: str, value: str) -> str:
    """The ledger hash of ``value`` (type-independent normalization apart, the same for every type)."""
    return hmac.new(key.ledger_salt, normalize(entity_type, value).encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def ledger_rows(key: PiiKey, doc_id: str, text: str, spans, operator_of) -> list[dict]:
    """The ledger rows of one document's findings (``spans`` in original-text coordinates)."""
    by_type: dict[str, list[dict]] = defaultdict(list)
    for s in spans:
        by_type[s.entity_type].append({"start": s.start, "end": s.end,
                                       "hash": value_hash(key, s.entity_type, text[s.start:s.end])})
    return [{"id": doc_id, "entity_type": t, "operator": operator_of(t), "count": len(items), "items": items}
            for t, items in sorted(by_type.items())]
