"""Fine-tuning data from users, JSONL: prompt/response pairs (``{"prompt", "response"}``) for supervised
fine-tuning, or preference triples (``{"prompt", "chosen", "rejected"}``) for DPO. Errors name the file and
line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

from fmaudit.errors import InputError


def read_training_jsonl(path: Path) -> tuple[str, list[tuple[str, ...]]]:
    """``("pairs", [(prompt, response)])`` or ``("preferences", [(prompt, chosen, rejected)])``: the kind is
    set by the first record's fields and every record must have the same ones, as non-empty strings."""
    path = Path(path)
    kind, out = None, []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the training data: {e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not valid JSON: {e.msg}") from None
        if not isinstance(rec, dict):
            raise InputError(f"{path}:{n}: a record must be a JSON object")
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
