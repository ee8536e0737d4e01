"""PII outside a document's text: which meta strings the pii stage scans, and writing them back rewritten.

``meta_fields: null`` (the default) scans every string in ``meta`` at any depth (extra top-level fields of a
record land in ``meta``); a list scans only those top-level keys (and any strings below them); ``[]`` none.
"""

from __future__ import annotations

import copy
from typing import Iterator, Optional

Path = tuple  # keys and list indices from meta's root to a string


def meta_strings(meta: dict, fields: Optional[list[str]]) -> list[tuple[Path, str]]:
    """``(path, value)`` of every string of ``meta`` the setting ``fields`` selects, in a stable order."""
    if fields is None:
        return list(_walk(meta, ()))
    return [item for key in fields if key in meta for item in _walk(meta[key], (key,))]


def _walk(value, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        if value.strip():
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, path + (i,))


def with_values(meta: dict, values: dict[Path, str]) -> dict:
    """A copy of ``meta`` with the strings at ``values``' paths replaced (``meta`` itself is not changed)."""
    if not values:
        return meta
    out = copy.deepcopy(meta)
    for path, value in values.items():
        node = out
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return out
