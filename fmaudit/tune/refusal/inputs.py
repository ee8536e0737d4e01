"""Prompt sets for refusal evaluation: CSV with at least ``prompt,type,label`` columns (label ``safe`` or
``unsafe``; other columns are kept in ``extra``), the shape of XSTest-like public sets. Errors name the file
and line (exit 2). Training data (pairs, preference triples) is read by :mod:`fmaudit.tune.pairs`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fmaudit.corpus.tables import read_csv_rows
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
    rows = []
    for line, row in read_csv_rows(path, ("prompt", "type", "label"), non_empty=("prompt",)):
        label = row["label"].strip().lower()
        if label not in LABELS:
            raise InputError(f"{path}:{line}: label must be safe or unsafe, not {row['label']!r}")
        extra = {k: v for k, v in row.items() if k not in ("prompt", "type", "label")}
        rows.append(PromptRow(row["prompt"].strip(), row["type"].strip() or "unspecified", label, extra))
    if not rows:
        raise InputError(f"{path}: no prompts")
    return rows
