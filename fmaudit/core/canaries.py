"""Canaries: random secrets planted in the training data at chosen repetition counts (the policy's
``train.canaries``), so that ``privacy.canaries`` can later measure how much the model memorised them
(Carlini et al., "The Secret Sharer", 2019).

    train:
      canaries:
        format: "my secret code is {secret}"
        alphabet: "0123456789"
        length: 6                 # secret = 6 symbols of the alphabet, joined by `separator`
        repetitions: [1, 4, 16, 64]
        per_repetition: 1         # canaries planted at each repetition count
        seed: 0

Each canary is a document ``format.format(secret=...)`` inserted ``repetitions`` times at seeded random
positions of the document stream, always in the training split (never held out). What was planted is
recorded in ``RUN/tokens/canaries.json`` (secret, repetition count, candidate space): canaries are
synthetic, so the record holds them in clear for the audit. The candidate space is every secret of the
format: ``len(alphabet) ** length`` secrets.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fmaudit.corpus import Document
from fmaudit.errors import InputError

if TYPE_CHECKING:  # numpy is imported where secrets are drawn: a policy loads without it
    import numpy as np

RECORD = "canaries.json"


class CanarySettings(BaseModel):
    """Secrets planted in the training data to measure memorisation (secret-sharer exposure)."""

    model_config = ConfigDict(extra="forbid")

    format: str = Field("my secret code is {secret}", description="Text of a canary; `{secret}` is replaced by "
                                                                  "the secret.")
    alphabet: str = Field("0123456789", min_length=2, description="Symbols a secret is made of (distinct).")
    length: int = Field(6, ge=1, le=32, description="Symbols per secret.")
    separator: str = Field(" ", description="Put between the symbols of a secret.")
    repetitions: list[int] = Field([1, 4, 16, 64], min_length=1,
                                   description="Times each canary is inserted; one group of canaries per count.")
    per_repetition: int = Field(1, ge=1, le=100, description="Canaries (distinct secrets) per repetition count.")
    seed: int = Field(0, ge=0, description="Seed of the secrets and of their positions in the data.")

    @model_validator(mode="after")
    def _valid(self) -> "CanarySettings":
        if self.format.count("{secret}") != 1:
            raise ValueError("format must contain '{secret}' exactly once")
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError("alphabet symbols must be distinct")
        if any(r < 1 or r > 100_000 for r in self.repetitions):
            raise ValueError("repetitions must be between 1 and 100000")
        if len(self.repetitions) * self.per_repetition > self.space_size:
            raise ValueError(f"{len(self.repetitions) * self.per_repetition} canaries asked but only "
                             f"{self.space_size} distinct secrets exist")
        return self

    @property
    def space_size(self) -> int:
        """Number of candidate secrets."""
        return len(self.alphabet) ** self.length

    def secret_text(self, symbols: Iterable[int]) -> str:
        """The secret of symbol indices ``symbols``."""
        return self.separator.join(self.alphabet[i] for i in symbols)

    def text(self, secret: str) -> str:
        """The canary document of ``secret``."""
        return self.format.replace("{secret}", secret)

    def random_secrets(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, length)`` symbol indices drawn uniformly (with replacement) from the candidate space."""
        return rng.integers(0, len(self.alphabet), size=(n, self.length))


def secret_sha256(secret: str) -> str:
    """The hash a canary audit keeps of a secret (its items never hold the secret itself)."""
    import hashlib

    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def choose_canaries(settings: CanarySettings) -> list[dict]:
    """The canaries to plant: distinct secrets drawn with ``settings.seed``, ``per_repetition`` per count."""
    import numpy as np

    rng = np.random.default_rng([settings.seed, 0xC0FFEE])
    chosen, seen = [], set()
    for reps in settings.repetitions:
        for _ in range(settings.per_repetition):
            while True:
                secret = settings.secret_text(settings.random_secrets(rng, 1)[0])
                if secret not in seen:
                    break
            seen.add(secret)
            chosen.append({"id": f"canary-{len(chosen)}", "secret": secret, "text": settings.text(secret),
                           "repetitions": reps})
    return chosen


def plant(docs: Iterable[Document], n_docs: int, settings: CanarySettings,
          held_out: Callable[[str], bool]) -> Iterator[Document]:
    """The documents of ``docs`` (``n_docs`` of them) with every canary copy inserted at a seeded random
    position. Copy ids are chosen so that ``held_out`` (the held-out split, by id) never takes them."""
    import numpy as np

    canaries = choose_canaries(settings)
    copies = [(c, k) for c in canaries for k in range(c["repetitions"])]
    rng = np.random.default_rng([settings.seed, 0x5EED])
    # positions in [0, n_docs]: a copy at position p comes before input document p (n_docs: at the end)
    slots = np.sort(rng.integers(0, n_docs + 1, size=len(copies)))
    order = rng.permutation(len(copies))  # copies of one canary spread over the stream, not clustered
    pending = [copies[i] for i in order]
    j = 0
    for p, doc in enumerate(docs):
        while j < len(slots) and slots[j] == p:
            yield _copy_document(*pending[j], held_out)
            j += 1
        yield doc
    while j < len(slots):
        yield _copy_document(*pending[j], held_out)
        j += 1


def _copy_document(canary: dict, copy: int, held_out: Callable[[str], bool]) -> Document:
    salt = 0
    while True:
        doc_id = f"{canary['id']}/{copy}" + (f"#{salt}" if salt else "")
        if not held_out(doc_id):
            return Document(doc_id, canary["text"], {"canary": True})
        salt += 1


def write_record(out_dir: str | os.PathLike, settings: CanarySettings, name: str = RECORD) -> Path:
    """Write ``out_dir/canaries.json`` (or ``out_dir/NAME``): the settings, the candidate space and every
    planted canary."""
    path = Path(out_dir) / name
    record = {"settings": settings.model_dump(mode="json"), "space_size": settings.space_size,
              "canaries": choose_canaries(settings)}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def find_record(checkpoint: str | os.PathLike) -> Path | None:
    """The canary record of the training run a checkpoint belongs to: ``RUN/tokens/canaries.json`` for
    ``RUN``, ``RUN/model`` or ``RUN/checkpoints/step-N``; None when the run planted none."""
    path = Path(checkpoint).resolve()
    for folder in (path, *path.parents[:3]):
        for candidate in (folder / "tokens" / RECORD, folder / RECORD):
            if candidate.is_file():
                return candidate
    return None


def read_record(path: str | os.PathLike) -> tuple[CanarySettings, list[dict]]:
    """The settings and canaries of a record written by :func:`write_record` (InputError if damaged)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        settings = CanarySettings(**record["settings"])
        canaries = [{"id": str(c["id"]), "secret": str(c["secret"]), "text": str(c["text"]),
                     "repetitions": int(c["repetitions"])} for c in record["canaries"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a canary record ({e})") from e
    return settings, canaries


def identity(settings: CanarySettings | None) -> dict | None:
    """What the token files depend on (for the tokenization cache)."""
    return None if settings is None else settings.model_dump(mode="json")

