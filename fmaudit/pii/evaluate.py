"""Recall and precision of the ``pii`` stage against a demo corpus's ground truth.

Everything is read from the run's output folder: the documents that reached the stage (``data/``,
``dropped/``, ``held/``) and the spans of the ledger ``pii_ledger/`` (original-text coordinates), so
no PII value is needed. An injected value counts as found when every non-space character of its
span lies inside some finding (of any type: the value is anonymized); ``typed_recall`` asks for a
finding of the same type. A finding is a true positive when it overlaps an injected value of its type.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterator

from fmaudit.corpus import iter_json_rows
from fmaudit.errors import InputError

LEDGER_DIR = "pii_ledger"
DOC_DIRS = ("data", "dropped", "held")


def iter_rows(folder: Path) -> Iterator[dict]:
    """Rows of every ``*.jsonl`` / ``*.jsonl.gz`` file in ``folder``, in name order."""
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            yield from (row for _, row in iter_json_rows(path))


def load_truth(path: Path) -> dict[str, list[dict]]:
    """The ``kind: pii`` rows of a ground-truth file, by document id; InputError naming a bad line."""
    truth: dict[str, list[dict]] = defaultdict(list)
    for n, row in iter_json_rows(path):
        if row.get("kind") != "pii":
            continue
        missing = [k for k in ("id", "entity_type", "start", "end") if k not in row]
        if missing:
            raise InputError(f"{path}:{n}: pii row lacks field(s) {', '.join(missing)}")
        truth[str(row["id"])].append(row)
    return truth


def _covered(start: int, end: int, spans: list[tuple[int, int]], text_chars: str | None = None) -> bool:
    inside = [False] * (end - start)
    for s, e in spans:
        for i in range(max(s, start), min(e, end)):
            inside[i - start] = True
    return all(inside[i] or (text_chars is not None and text_chars[i].isspace()) for i in range(end - start))


def _found_and_truth(truth_path: Path, out_dir: Path, key=None):
    out_dir = Path(out_dir)
    if not (out_dir / LEDGER_DIR).is_dir():
        raise InputError(f"{out_dir}: no {LEDGER_DIR}/ folder (the pii stage writes its ledger only with a key; "
                         f"see the stage's ledger and key_env settings)")
    seen = {row["id"] for d in DOC_DIRS for row in iter_rows(out_dir / d)}
    # an id that itself looked like PII is in the ledger as "hashed:<keyed hash>"; with the key, join it back
    unhash: dict[str, str] = {}
    if key is not None:
        from fmaudit.pii.ledger import HASHED_ID, value_hash

        unhash = {HASHED_ID + value_hash(key, "DOCUMENT_ID", doc): doc for doc in seen}
    found: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for row in iter_rows(out_dir / LEDGER_DIR):
        doc = unhash.get(row["id"], row["id"])
        found[doc].extend((it["start"], it["end"], row["entity_type"]) for it in row["items"])
    truth = {doc: rows for doc, rows in load_truth(truth_path).items() if doc in seen}
    return seen, found, truth


def missed_items(truth_path: Path, out_dir: Path, key=None) -> list[dict]:
    """The ground-truth rows (values included: for tests, never for reports) the stage did not anonymize."""
    _, found, truth = _found_and_truth(truth_path, out_dir, key)
    return [r for doc, rows in truth.items() for r in rows
            if not _covered(r["start"], r["end"], [(s, e) for s, e, _ in found.get(doc, [])], r.get("value"))]


def evaluate(truth_path: Path, out_dir: Path, key=None) -> dict:
    """Recall per injected entity type (and overall) and precision per found type, from a finished run.

    ``key`` (the run's :class:`~fmaudit.pii.keys.PiiKey`) joins the findings of documents whose id the stage
    wrote to the ledger hashed; without it those documents count as missed."""
    seen, found, truth = _found_and_truth(truth_path, out_dir, key)
    per_type: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "found": 0, "typed": 0})
    missed: list[dict] = []  # which documents kept an injected value (ids and types only, never the value)
    for doc, rows in truth.items():
        spans = found.get(doc, [])
        for r in rows:
            t = per_type[r["entity_type"]]
            t["n"] += 1
            value = r.get("value")
            covered = _covered(r["start"], r["end"], [(s, e) for s, e, _ in spans], value)
            t["found"] += covered
            if not covered:
                missed.append({"id": doc, "entity_type": r["entity_type"], "start": r["start"], "end": r["end"]})
            t["typed"] += _covered(r["start"], r["end"], [(s, e) for s, e, k in spans if k == r["entity_type"]], value)
    precision: dict[str, dict[str, int]] = defaultdict(lambda: {"found": 0, "true": 0})
    for doc, spans in found.items():
        rows = truth.get(doc, [])
        for s, e, kind in spans:
            p = precision[kind]
            p["found"] += 1
            p["true"] += any(r["entity_type"] == kind and s < r["end"] and r["start"] < e for r in rows)
    n = sum(t["n"] for t in per_type.values())
    hit = sum(t["found"] for t in per_type.values())
    return {
        "documents": len(seen), "documents_with_truth": len(truth), "injected": n,
        "recall": hit / n if n else None,
        "recall_by_type": {k: {"injected": v["n"], "recall": v["found"] / v["n"], "typed_recall": v["typed"] / v["n"]}
                           for k, v in sorted(per_type.items())},
        "precision_by_type": {k: {"found": v["found"], "precision": v["true"] / v["found"] if v["found"] else None}
                              for k, v in sorted(precision.items())},
        "missed": missed,
    }
