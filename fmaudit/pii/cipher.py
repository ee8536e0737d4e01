"""Authenticated encryption of PII values: AES-SIV (RFC 5297) from ``cryptography``.

Token form (written by the pii stage's ``encrypt`` operator): ``<ENC:TYPE:PAYLOAD>``, PAYLOAD being URL-safe
base64 (no padding) of ``mode (1 byte) | key id (4 bytes) | [nonce (16 bytes)] | SIV tag (16) | ciphertext``.

* One AES-SIV key per entity type, derived by HKDF-SHA256 from the run key, so a value encrypted as
  ``CREDIT_CARD`` never decrypts as another type and the types' ciphertexts cannot be compared.
* ``deterministic`` (default): no nonce. The same value gives the same token under the same key, so
  reruns, resumed runs and every engine write the same bytes, and equal values can still be joined.
  Anyone holding the output can see that two tokens hide the same value (but not which value).
* ``randomized``: a fresh random nonce per value, bound into the SIV, hides even that equality; the
  price is that two runs (or a killed and resumed run) no longer write identical bytes.
* The SIV tag authenticates the value, the type and the mode: a damaged token fails to decrypt
  (:class:`DamagedToken`) instead of giving wrong data. The key id, a short HKDF fingerprint of the run
  key (it reveals nothing about the key), tells a token made with another key apart (:class:`WrongKey`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from functools import lru_cache

from fmaudit.errors import InputError
from fmaudit.text.pii_marks import ENCRYPTED, encrypted_tag

# Anything that starts like a token: a damaged one that no longer matches ENCRYPTED is still reported.
TOKEN_START = re.compile(r"<ENC:")
MODES = {"deterministic": 1, "randomized": 2}
KEY_ID_BYTES, NONCE_BYTES, TAG_BYTES = 4, 16, 16


class DecryptError(InputError):
    """A token that cannot be decrypted; ``why`` is ``wrong_key`` or ``damaged``."""

    why = "damaged"


class WrongKey(DecryptError):
    why = "wrong_key"


class DamagedToken(DecryptError):
    why = "damaged"


def _hkdf(secret: bytes, info: bytes, size: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=size, salt=b"fmaudit-pii-encrypt", info=info).derive(secret)


@lru_cache(maxsize=64)
def _siv(secret: bytes, entity_type: str):
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

    return AESSIV(_hkdf(secret, b"aes-siv-512:" + entity_type.encode(), 64))


@lru_cache(maxsize=16)
def key_id(secret: bytes) -> bytes:
    """A public fingerprint of the run key (HKDF output: says nothing about the key itself)."""
    return _hkdf(secret, b"key-id", KEY_ID_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encrypt_value(secret: bytes, entity_type: str, value: str, mode: str = "deterministic") -> str:
    """The token ``<ENC:TYPE:...>`` for ``value``."""
    header = bytes([MODES[mode]]) + key_id(secret)
    nonce = os.urandom(NONCE_BYTES) if mode == "randomized" else b""
    sealed = _siv(secret, entity_type).encrypt(value.encode("utf-8"), [header + nonce])
    return encrypted_tag(entity_type, _b64(header + nonce + sealed))


def decrypt_token(secret: bytes, entity_type: str, payload: str) -> str:
    """The value behind one token's payload; raises :class:`WrongKey` or :class:`DamagedToken`."""
    from cryptography.exceptions import InvalidTag

    try:
        raw = _unb64(payload)
    except (binascii.Error, ValueError):
        raise DamagedToken("not valid base64") from None
    if _b64(raw) != payload:  # the last character's unused bits changed: still a change to the token
        raise DamagedToken("not canonical base64")
    if len(raw) < 1 + KEY_ID_BYTES + TAG_BYTES or raw[0] not in MODES.values():
        raise DamagedToken("too short or unknown mode byte")
    split = 1 + KEY_ID_BYTES + (NONCE_BYTES if raw[0] == MODES["randomized"] else 0)
    header, sealed = raw[:split], raw[split:]
    if len(sealed) < TAG_BYTES:
        raise DamagedToken("too short")
    if header[1:1 + KEY_ID_BYTES] != key_id(secret):
        raise WrongKey(f"made with key id {header[1:1 + KEY_ID_BYTES].hex()}, this key's id is "
                       f"{key_id(secret).hex()}")
    try:
        value = _siv(secret, entity_type).decrypt(sealed, [header])
    except InvalidTag:
        raise DamagedToken("authentication failed (the token was changed)") from None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:  # cannot happen with an intact tag; kept as a guard
        raise DamagedToken("not UTF-8") from None


def decrypt_tokens(text: str, secret: bytes, on_error=None) -> tuple[str, int]:
    """``text`` with every token decrypted, and the number decrypted.

    A token that fails raises its :class:`DecryptError`, or, when ``on_error(error, token_text)`` is given,
    is passed to it and left as it is. A ``<ENC:`` that is not a whole token any more counts as damaged.
    """
    count = 0
    out: list[str] = []
    pos = 0
    for start in TOKEN_START.finditer(text):
        if start.start() < pos:
            continue
        m = ENCRYPTED.match(text, start.start())
        out.append(text[pos:start.start()])
        end = m.end() if m else start.end()
        try:
            if m is None:
                raise DamagedToken("a token cut short or with a character outside its alphabet")
            out.append(decrypt_token(secret, m.group(1), m.group(2)))
            count += 1
        except DecryptError as e:
            if on_error is None:
                raise
            on_error(e, text[start.start():end if m else start.start() + 40])
            out.append(text[start.start():end])
        pos = end
    out.append(text[pos:])
    return "".join(out), count
