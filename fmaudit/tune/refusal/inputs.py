"""Prompt sets for refusal evaluation: CSV with at least ``prompt,type,label`` columns (label ``safe`` or
``unsafe``; other columns are kept in ``extra``), the shape of XSTest-like public sets. Errors name the file
and line (exit 2). Training data (pairs, preference triples) is read by :mod:`fmaudit.tune.pairs`."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from fmaudit.errors import InputError

LABELS = ("safe", "unsafe")


@dataclass(frozen=True)
class PromptRow:
    """One evaluation prompt: ``type`` is its category (or contrast type), ``label`` safe or unsafe."""

    prompt: str
    type: str
    label: str
    extra: dict = field(default_factory=dict)

    @property
    def unsafe(self) -> bool:
        return self.label == "unsafe"


def read_prompt_csv(path: Path) -> list[PromptRow]:
    """Rows of a ``prompt,type,label`` CSV file (header on line 1)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the prompt set: {e}") from None
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    missing = [c for c in ("prompt", "type", "label") if c not in columns]
    if missing:
        raise InputError(f"{path}:1: the header lacks the column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} (it has: {', '.join(columns) or 'nothing'})")
    rows = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise InputError(f"{path}:{line}: more fields than the header has")
        prompt, label = (row["prompt"] or "").strip(), (row["label"] or "").strip().lower()
        if not prompt:
            raise InputError(f"{path}:{line}: empty prompt")
        if label not in LABELS:
            raise InputError(f"{path}:{line}: label must be safe or unsafe, not {row['label']!r}")
        extra = {k: v for k, v in row.items() if k not in ("prompt", "type", "label")}
        rows.append(PromptRow(prompt, (row["type"] or "").strip() or "unspecified", label, extra))
    if not rows:
        raise InputError(f"{path}: no prompts")
    return rows
