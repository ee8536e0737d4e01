"""The downstream task: a table of text, binary label and sensitive features, and its seeded split.

:func:`load_task` reads CSV, JSONL (plain or gzip) or Parquet and checks it against the policy's columns;
:func:`split_task` holds out a share of every (label, group) cell with a seeded shuffle. Every problem is an
:class:`~fmaudit.errors.InputError` (exit 2) naming the file and the column (and the row where there is one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmaudit.errors import InputError
from fmaudit.tune.adapt.settings import Columns

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".gz": "jsonl", ".parquet": "parquet",
            ".pq": "parquet"}
GROUP_SEP = " & "  # joins the values of several sensitive features into one intersectional group name


@dataclass
class Task:
    """The rows of a task table that fmaudit uses. Labels and groups are kept as text."""

    path: Path
    texts: list[str]
    labels: np.ndarray  # 0/1
    label_values: tuple[str, str]  # (negative, positive) as written in the table
    sensitive: "object"  # pandas DataFrame, one column per sensitive feature, values as text
    columns: Columns

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def groups(self) -> np.ndarray:
        """One intersectional group name per row (the plain value with a single sensitive feature)."""
        return intersect(self.sensitive)


def intersect(sensitive) -> np.ndarray:
    """Row-wise group names: the values of every sensitive column joined by ``GROUP_SEP``."""
    cols = [sensitive[c].astype(str).to_numpy() for c in sensitive.columns]
    out = cols[0].astype(object)
    for c in cols[1:]:
        out = out + GROUP_SEP + c
    return out


def read_table(path: str | os.PathLike):
    """A task file as a pandas DataFrame (CSV and JSONL values kept as written, CSV as text)."""
    import pandas as pd

    from fmaudit.corpus import iter_json_rows

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such task file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown task format (expected .csv, .jsonl, .jsonl.gz or .parquet)")
    try:
        if kind == "csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if kind == "parquet":
            return pd.read_parquet(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the {kind} table: {e}") from None
    return pd.DataFrame([row for _, row in iter_json_rows(path)])


def load_task(path: str | os.PathLike, columns: Columns, positive_label: str | None = None) -> Task:
    """Read and check a task table: every named column present, texts non-empty strings, labels of exactly two
    classes, sensitive values present."""
    path = Path(path)
    df = read_table(path)
    if df.empty:
        raise InputError(f"{path}: the task table has no rows")
    for role, name in [("text", columns.text), ("label", columns.label)] + [("sensitive", s) for s in columns.sensitive]:
        if name not in df.columns:
            raise InputError(f"{path}: column {name!r} ({role} column named by the policy) does not exist; "
                             f"columns: {', '.join(map(str, df.columns))}")
    texts = df[columns.text].tolist()
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise InputError(f"{path}: row {_row(path, i)}: column {columns.text!r}: text missing or empty")
    labels_text = _as_text(df[columns.label], path, columns.label)
    values = sorted(set(labels_text))
    if len(values) != 2:
        what = "one class" if len(values) == 1 else f"{len(values)} classes"
        raise InputError(f"{path}: column {columns.label!r}: the label has {what} ({', '.join(values[:5])}); "
                         "a binary task needs exactly two")
    pos = values[1] if positive_label is None else str(positive_label)
    if pos not in values:
        raise InputError(f"{path}: column {columns.label!r}: positive_label {pos!r} is not one of its values "
                         f"({', '.join(values)})")
    neg = values[0] if pos == values[1] else values[1]
    import pandas as pd

    sensitive = pd.DataFrame({c: _as_text(df[c], path, c) for c in columns.sensitive})
    return Task(path, texts, (np.asarray(labels_text) == pos).astype(np.int64), (neg, pos), sensitive, columns)


def _as_text(series, path: Path, column: str) -> list[str]:
    out = []
    for i, v in enumerate(series.tolist()):
        if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip()):
            raise InputError(f"{path}: row {_row(path, i)}: column {column!r}: value missing")
        out.append(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    return out


def _row(path: Path, i: int) -> str:
    """Where row ``i`` is in the file, in words the user can find (CSV: a header line comes first)."""
    kind = SUFFIXES.get(path.suffix.lower())
    return f"{i + 2} (line)" if kind == "csv" else (f"{i + 1} (line)" if kind == "jsonl" else str(i))


@dataclass
class Split:
    train: np.ndarray  # row indices, sorted
    test: np.ndarray


def split_task(task: Task, test_fraction: float, seed: int) -> Split:
    """Hold out ``test_fraction`` of every (label, intersectional group) cell, seeded. Every group of every
    sensitive column must have rows on both sides (else InputError naming the file, column and group)."""
    rng = np.random.default_rng(seed)
    cells = np.array([f"{y}|{g}" for y, g in zip(task.labels, task.groups)])
    test = []
    for cell in sorted(set(cells)):
        idx = np.flatnonzero(cells == cell)
        rng.shuffle(idx)
        test.extend(idx[: int(round(len(idx) * test_fraction))])
    test_mask = np.zeros(len(task), dtype=bool)
    test_mask[test] = True
    for col in task.sensitive.columns:
        values = task.sensitive[col].to_numpy()
        for g in sorted(set(values)):
            members = values == g
            for side, mask in (("test", test_mask), ("train", ~test_mask)):
                if not (members & mask).any():
                    raise InputError(
                        f"{task.path}: column {col!r}: group {g!r} has no members in the {side} split "
                        f"({int(members.sum())} row(s) in all, test_fraction {test_fraction}); add rows of that "
                        "group or merge it with another")
    return Split(np.flatnonzero(~test_mask), np.flatnonzero(test_mask))
