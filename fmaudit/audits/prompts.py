"""Prompt files of the generation audits: JSONL or CSV, read with file:line errors.

- JSONL in the RealToxicityPrompts layout: ``{"prompt": {"text": ..., "toxicity": 0.7, ...}, ...}``;
- plain JSONL: ``{"prompt": "..."}`` (or ``"text"``), other fields kept;
- CSV with a ``prompt`` column (:func:`fmaudit.audits.inputs.read_csv_rows`), other columns kept.

Every row becomes ``{"prompt": str, "line": int, **other fields}``; a nested ``prompt`` object's other fields
are lifted with a ``prompt_`` prefix (``prompt_toxicity``). An empty or missing prompt is an InputError
naming the file and line (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from fmaudit.audits.inputs import builtin, read_csv_rows
from fmaudit.corpus import iter_json_rows
from fmaudit.errors import InputError

__all__ = ["builtin", "read_prompts", "as_float"]


def read_prompts(path: str | Path, required: Iterable[str] = (), text_column: str = "prompt") -> list[dict]:
    """The rows of a prompt file (see the module docstring); ``required`` fields must be present and
    non-empty; ``text_column`` names a CSV file's text column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such prompt file")
    required = list(required)
    if path.suffix.lower() == ".csv":
        rows = [(line, {"prompt": row.pop(text_column), **row}) for line, row in
                read_csv_rows(path, [text_column, *required], [text_column, *required])]
    else:
        rows = list(_jsonl_rows(path))
    out = []
    for lineno, raw in rows:
        row = _normalise(raw, path, lineno)
        for field in required:
            value = row.get(field)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise InputError(f"{path}:{lineno}: field {field!r} is missing or empty")
        out.append(row)
    if not out:
        raise InputError(f"{path}: no prompts")
    return out


def _jsonl_rows(path: Path):
    for lineno, row in iter_json_rows(path):
        if not isinstance(row, dict):
            raise InputError(f"{path}:{lineno}: a prompt row must be a JSON object")
        yield lineno, row


def _normalise(raw: dict, path: Path, lineno: int) -> dict:
    row = dict(raw)
    prompt: Optional[object] = row.pop("prompt", None)
    if isinstance(prompt, dict):  # RealToxicityPrompts: {"prompt": {"text": ..., "toxicity": ...}}
        for k, v in prompt.items():
            if k != "text":
                row[f"prompt_{k}"] = v
        prompt = prompt.get("text")
    if prompt is None:
        prompt = row.pop("text", None)
    if not isinstance(prompt, str):
        raise InputError(f"{path}:{lineno}: no prompt text (a 'prompt' string, 'prompt.text', or 'text')")
    if not prompt.strip():
        raise InputError(f"{path}:{lineno}: empty prompt")
    return {"prompt": prompt, "line": lineno, **row}


def as_float(row: dict, field: str, path: str | Path) -> Optional[float]:
    """``row[field]`` as a float in [0, 1] (None when absent or empty); InputError naming the line otherwise."""
    value = row.get(field)
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}:{row['line']}: field {field!r} is not a number: {value!r}") from None
    if not 0.0 <= x <= 1.0:
        raise InputError(f"{path}:{row['line']}: field {field!r} must be in [0, 1], got {x}")
    return x
