"""What the data stages recorded about given training documents, read from a filter job's folder:

- toxicity: the scores of ``OUT/toxicity_scores/``, the decision, and how close each label came to its
  threshold (``toxicity.json``'s ``details.thresholds``);
- pii: the entity types the ledger ``OUT/pii_ledger/`` holds for the document (types and counts only);
- cda: whether the cda stage touched it (``meta.cda``, ``meta.counterfactual_of``);
- source: the input file and line it came from (the job's inputs, read again).

Each document gets a verdict: ``flagged_and_kept``, ``near_threshold``, ``looked_at`` (scored, well below
every threshold) or ``never_looked_at`` (no toxicity score recorded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from fmaudit.corpus import Document, read_jsonl
from fmaudit.pii.evaluate import iter_rows
from fmaudit.reports.envelope import read_json

NEAR = 0.5  # a score at or above this fraction of its threshold counts as near it


def _toxicity_thresholds(job: Path) -> Optional[dict]:
    path = job / "reports" / "toxicity.json"
    return read_json(path)["details"].get("thresholds") if path.is_file() else None


def _sources(job: Path, ids: set[str]) -> dict[str, dict]:
    """File and line of each id in the job's inputs (only .jsonl inputs are searched)."""
    pipeline = job / "reports" / "pipeline.json"
    found: dict[str, dict] = {}
    if not pipeline.is_file():
        return found
    for entry in read_json(pipeline).get("inputs", []):
        path = Path(entry["path"])
        if not path.is_file() or not path.name.endswith((".jsonl", ".jsonl.gz")):
            continue
        for line, record in read_jsonl(path):
            if isinstance(record, Document) and record.id in ids and record.id not in found:
                found[record.id] = {"file": path.name, "line": line}
        if len(found) == len(ids):
            break
    return found


def stage_records(job: Path, docs: dict[str, dict]) -> dict[str, dict]:
    """Per document id: what each data stage recorded, and a verdict. ``docs`` maps id -> the document's
    training-data row (its ``meta`` says what cda did)."""
    ids = set(docs)
    base_ids = {i.split("#")[0] for i in ids}  # a cda twin's records are its original's
    thresholds = _toxicity_thresholds(job)
    scores = {r["id"]: r for r in iter_rows(job / "toxicity_scores") if r["id"] in ids | base_ids}
    pii: dict[str, dict[str, int]] = {}
    for r in iter_rows(job / "pii_ledger"):
        if r["id"] in ids | base_ids:
            pii.setdefault(r["id"], {})[r["entity_type"]] = r.get("count", len(r.get("items", [])))
    sources = _sources(job, base_ids)
    out = {}
    for doc_id, doc in docs.items():
        base = doc_id.split("#")[0]
        meta = doc.get("meta") or {}
        tox = scores.get(doc_id) or scores.get(base)
        record = {"pii_types": pii.get(base, {}), "cda": meta.get("cda") or ({"twin_of": meta["counterfactual_of"]}
                                                                             if "counterfactual_of" in meta else None),
                  "source": sources.get(base), "toxicity": None}
        verdict = "never_looked_at"
        if tox is not None and thresholds:
            closeness = {label: tox["scores"].get(label, 0.0) / t for label, t in thresholds.items() if t}
            nearest = max(closeness, key=closeness.get) if closeness else None
            record["toxicity"] = {"scores": tox["scores"], "decision": tox["decision"], "thresholds": thresholds,
                                  "nearest_label": nearest, "share_of_threshold": closeness.get(nearest)}
            if tox["decision"] in ("flag", "hold"):
                verdict = "flagged_and_kept"
            elif nearest is not None and closeness[nearest] >= NEAR:
                verdict = "near_threshold"
            else:
                verdict = "looked_at"
        record["verdict"] = verdict
        out[doc_id] = record
    return out
