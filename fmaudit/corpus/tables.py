"""Tables that users hand fmaudit (prompt sets, pair sets, task tables): CSV read with errors naming the file,
the line and the column, every column kept."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

from fmaudit.errors import InputError


def read_csv_rows(path: str | Path, required: Iterable[str], non_empty: Iterable[str] = ()) -> list[tuple[int, dict]]:
    """``(line, row)`` of each row of a CSV file with a header; every column is kept (as a string).

    A missing ``required`` column is an error naming the file and the header line; an empty value in a
    ``non_empty`` column one naming the file, the line and the column."""
    path = Path(path)
    required, non_empty = list(required), list(non_empty)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a byte-order mark is not part of the header
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(f"{path}:1: missing column {missing[0]!r} (header: {', '.join(header) or 'empty'}; "
                                 f"needs {', '.join(required)})")
            rows = []
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise InputError(f"{path}:{line}: more fields than the header has columns")
                for col in non_empty:
                    if not (row.get(col) or "").strip():
                        raise InputError(f"{path}:{line}: empty {col!r}")
                rows.append((line, {k: (v if v is not None else "") for k, v in row.items()}))
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text: {e}") from None
    except csv.Error as e:
        raise InputError(f"{path}: not a readable CSV file: {e}") from None
    if not rows:
        raise InputError(f"{path}: no rows after the header")
    return rows
