"""Fine-tuning data from users, JSONL: prompt/response pairs (``{"prompt", "response"}``) for supervised
fine-tuning, or preference triples (``{"prompt", "chosen", "rejected"}``) for DPO. Errors name the file and
line (exit 2)."""

from __future__ import annotations

from pathlib import Path

from fmaudit.corpus import iter_json_rows
from fmaudit.errors import InputError


def read_training_jsonl(path: Path) -> tuple[str, list[tuple[str, ...]]]:
    """``("pairs", [(prompt, response)])`` or ``("preferences", [(prompt, chosen, rejected)])``: the kind is
    set by the first record's fields and every record must have the same ones, as non-empty strings."""
    path = Path(path)
    kind, out = None, []
    for n, rec in iter_json_rows(path):
        if kind is None:
            kind = "preferences" if "chosen" in rec or "rejected" in rec else "pairs"
        fields = ("prompt", "chosen", "rejected") if kind == "preferences" else ("prompt", "response")
        for f in fields:
            value = rec.get(f)
            if not isinstance(value, str) or not value.strip():
                what = "missing" if f not in rec else "empty" if isinstance(value, str) else "not a string"
                raise InputError(f"{path}:{n}: field '{f}' is {what} (a {kind} file needs "
                                 f"{', '.join(fields)})")
        out.append(tuple(rec[f] for f in fields))
    if not out:
        raise InputError(f"{path}: no records")
    return kind, out
