"""The secret key of the ``pii`` stage, and the sub-keys derived from it.

The key comes from an environment variable or a key file, never from the policy, and is never written
to a report or log. One key serves several purposes, each through its own HMAC-derived sub-key, so a
leaked ledger salt says nothing about the encryption keys (HKDF-derived per entity type, see
:mod:`fmaudit.pii.cipher`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from fmaudit.errors import InputError

# Public, published with fmaudit: only for the synthetic demo corpus (`demo_key: true`).
DEMO_KEY = b"fmaudit-public-demo-key-not-secret"


@dataclass(frozen=True)
class PiiKey:
    """Key material; ``source`` says where it came from (for reports, without the key itself)."""

    secret: bytes
    source: str

    def derive(self, purpose: str, size: int = 32) -> bytes:
        return hmac.new(self.secret, b"fmaudit-pii:" + purpose.encode(), hashlib.sha256).digest()[:size]

    @property
    def ledger_salt(self) -> bytes:
        return self.derive("ledger")

    @property
    def hash_salt(self) -> bytes:
        return self.derive("hash-operator")

    @property
    def pseudonym_seed(self) -> bytes:
        return self.derive("pseudonym")

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        return f"PiiKey(source={self.source!r})"


MIN_KEY_BYTES = 16


def load_key(key_env: str, key_file: Optional[str] = None, demo_key: bool = False) -> Optional[PiiKey]:
    """The key from ``$key_env``, else from ``key_file``, else the public demo key if allowed, else None."""
    value = os.environ.get(key_env)
    if value:
        if len(value.encode("utf-8")) < MIN_KEY_BYTES:
            raise InputError(f"environment variable {key_env} holds {len(value.encode('utf-8'))} bytes; "
                             f"use at least {MIN_KEY_BYTES} random bytes (e.g. $(openssl rand -hex 32))")
        return PiiKey(value.encode("utf-8"), f"environment variable {key_env}")
    if key_file:
        path = Path(key_file).expanduser()
        try:
            data = path.read_bytes().strip()
        except OSError as e:
            raise InputError(f"{path}: cannot read PII key file: {e.strerror or e}") from None
        if len(data) < MIN_KEY_BYTES:
            raise InputError(f"{path}: PII key file holds {len(data)} bytes; use at least {MIN_KEY_BYTES} random bytes")
        return PiiKey(data, f"key file {path}")
    if demo_key:
        return PiiKey(DEMO_KEY, "public demo key")
    return None


def missing_key_message(key_env: str, key_file: Optional[str], why: str) -> str:
    where = f"set the environment variable {key_env}" + (f" or create {key_file}" if key_file else
                                                        " or give a key file (policy key_file, --key-file)")
    return f"the pii stage needs a secret key ({why}): {where} (for example: export {key_env}=$(openssl rand -hex 32))"
