"""Reading audit input files (pair sets, prompt sets, held-out text) with errors that name file, line and field.

Built-in sets are package data under ``fmaudit/audits/data/``; :func:`builtin` gives their path. Every reader
returns ``(line, row)`` pairs so that items can point back at the line they came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from fmaudit.corpus.tables import read_csv_rows
from fmaudit.errors import InputError

DATA_DIR = Path(__file__).with_name("data")


def builtin(name: str) -> Path:
    """The path of a built-in input set shipped with fmaudit (``fmaudit/audits/data/<name>``)."""
    return DATA_DIR / name


def read_texts(path: str | Path, field: str = "text") -> list[tuple[int, str]]:
    """``(line, text)`` of held-out text: a JSONL file (``field`` of each row; plain or .gz), a CSV file with
    a ``field`` column, a plain-text file (one text per non-empty line), or a folder of documents (a
    filtered ``data/`` folder: every valid document)."""
    from fmaudit.corpus import iter_json_rows, read_documents

    path = Path(path)
    if path.is_dir():
        texts = [(i, doc.text) for i, doc in enumerate(read_documents([path]), 1)]
    elif path.name.endswith((".jsonl", ".jsonl.gz", ".json")):
        texts = []
        for line, row in iter_json_rows(path):
            value = _dotted(row, field)
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{path}:{line}: field {field!r} is missing, empty or not a string")
            texts.append((line, value))
    elif path.suffix == ".csv":
        texts = [(line, row[field]) for line, row in read_csv_rows(path, [field], [field])]
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: cannot read as UTF-8 text: {e}") from None
        texts = [(i, t) for i, t in enumerate(lines, 1) if t.strip()]
    if not texts:
        raise InputError(f"{path}: no texts")
    return texts


def _dotted(row: dict, field: str) -> Optional[object]:
    """``row["prompt"]["text"]`` for ``field="prompt.text"`` (RealToxicityPrompts layout), None when absent."""
    value: object = row
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
