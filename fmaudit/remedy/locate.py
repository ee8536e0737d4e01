"""What a trace starts from: a failed check of an audit folder, the items behind it, and the checkpoint, training
run and data job they lead back to (each found from the reports, or given)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from fmaudit.audits.stats import Metric
from fmaudit.corpus import iter_json_rows
from fmaudit.errors import InputError
from fmaudit.reports.envelope import read_json, read_reports

# continuous metrics: the share of items, worst first, that a trace explains
WORST_SHARE = 0.2


@dataclass
class Finding:
    """A failed check and everything it leads to."""

    audit_dir: Path
    audit: str
    check: dict
    report: dict
    metric: Metric
    failing: list[dict]
    checkpoint: Path
    train_run: Optional[Path]
    data_dir: Path
    job_dir: Path
    texts: dict[str, str]  # item id -> its text, for items that keep none themselves (canaries: the record's)


def _find_check(audit_dir: Path, name: str) -> tuple[dict, dict]:
    audit, _, check_name = name.rpartition(":") if ":" in name else ("", "", name)
    reports = [r for r in read_reports(audit_dir / "reports") if r.get("kind") == "audit" and r["stage"] != "compare"]
    if not reports:
        raise InputError(f"{audit_dir}: no audit reports (an fmaudit audit folder holds reports/<audit>.json)")
    found = [(r, c) for r in reports for c in r["checks"] if c["name"] == check_name and (not audit or r["stage"] == audit)]
    if not found:
        names = ", ".join(f"{r['stage']}:{c['name']}" for r in reports for c in r["checks"]) or "none"
        raise InputError(f"{audit_dir}: no check {name!r}; checks: {names}")
    if len(found) > 1:
        raise InputError(f"{audit_dir}: check {name!r} is in several audits; name it AUDIT:CHECK "
                         f"({', '.join(r['stage'] + ':' + c['name'] for r, c in found)})")
    report, check = found[0]
    if check["passed"]:
        raise InputError(f"{audit_dir}: check {report['stage']}:{check_name} passed ({check['value']} "
                         f"{check['direction']} {check['threshold']}): there is no failure to trace")
    return report, check


def failing_items(metric: Metric, check: dict, items: list[dict]) -> list[dict]:
    """The items that make the check fail: for a 0/1 outcome, those counted in the wrong direction; for a
    continuous one, worst first, those beyond the check's threshold themselves (each canary whose exposure
    passes the gate), or the worst :data:`WORST_SHARE` of them when none is (a mean over the threshold)."""
    selected = metric.select(items)
    too_high = check["direction"] == "max"
    if metric.binary:
        return [it for it in selected if bool(it.get(metric.item_field)) == too_high]
    field = metric.item_field
    ranked = sorted((it for it in selected if isinstance(it.get(field), (int, float))), key=lambda it: it[field],
                    reverse=too_high)
    threshold = check.get("threshold")
    per_item = metric.weight_field is None and metric.transform is None  # items on the threshold's scale
    if per_item and isinstance(threshold, (int, float)) and check["direction"] in ("max", "min"):
        beyond = [it for it in ranked if (it[field] > threshold if too_high else it[field] < threshold)]
        if beyond:
            return beyond
    return ranked[:max(1, int(len(ranked) * WORST_SHARE))]


def canary_texts(report: dict, items: list[dict]) -> dict[str, str]:
    """Item id -> canary text for the items of a ``privacy.canaries`` audit (they keep only the secret's
    sha256), from the record its protocol names, where the record's secret matches the item's hash; empty for
    other audits or when the record is not at hand."""
    from fmaudit.core.canaries import read_record, secret_sha256

    record = (report.get("protocol") or {}).get("data_file")
    if report.get("stage") != "privacy.canaries" or not record or not Path(record).is_file():
        return {}
    known = {c["id"]: c for c in read_record(record)[1]}
    return {it["id"]: known[it["id"]]["text"] for it in items if it.get("id") in known
            and secret_sha256(known[it["id"]]["secret"]) == it.get("secret_sha256")}


def locate(audit_dir: str | Path, check: str, *, checkpoint: Optional[str | Path] = None,
           data: Optional[str | Path] = None) -> Finding:
    """The finding of ``check`` in ``audit_dir``; InputError (exit 2) for a passed check, missing items, or a
    checkpoint or data folder that cannot be found."""
    audit_dir = Path(audit_dir)
    report, chk = _find_check(audit_dir, check)
    items_path = audit_dir / "items" / f"{report['stage']}.jsonl"
    if not items_path.is_file():
        raise InputError(f"{items_path}: no items file (the audit folder must hold items/<audit>.jsonl)")
    items = [row for _, row in iter_json_rows(items_path)]
    spec = (report.get("details", {}).get("intervals") or {}).get(chk["name"])
    if not spec or not spec.get("item_field"):
        raise InputError(f"{audit_dir}: metric {chk['name']} of {report['stage']} has no per-item field to trace")
    metric = Metric.from_json(spec)
    failing = failing_items(metric, chk, items)
    if not failing:
        raise InputError(f"{items_path}: no item fails {report['stage']}:{chk['name']}")
    ckpt = Path(checkpoint) if checkpoint else Path((report.get("details", {}).get("checkpoint") or {}).get("path", ""))
    if not ckpt.name or not (ckpt / "config.json").is_file():
        raise InputError(f"{audit_dir}: the audited checkpoint {str(ckpt) or '(not recorded)'} is not a checkpoint "
                         f"folder here; give it with --checkpoint")
    train_run = ckpt.parent if (ckpt.parent / "reports" / "train.json").is_file() else None
    if data is None:
        if train_run is None:
            raise InputError(f"{ckpt}: not the model/ of an fmaudit training run, so its training data is unknown; "
                             f"give the data folder with --data")
        data = read_json(train_run / "reports" / "train.json")["details"]["data"]["folder"]
    data_dir = Path(data)
    if (data_dir / "data").is_dir():
        data_dir = data_dir / "data"
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: the training data folder does not exist (give it with --data)")
    return Finding(audit_dir, report["stage"], chk, report, metric, failing, ckpt, train_run, data_dir, data_dir.parent,
                   canary_texts(report, failing))


def item_query(item: dict, audit: str, texts: Optional[dict[str, str]] = None):
    """What the model produced for an item, as an influence query: ``(prompt, continuation)`` for generations,
    the sentence the check counts for pair audits, a canary's text (from ``texts``, the record's, when the
    item's secret hash matched), else the item's text."""
    continuation = next((item[k] for k in ("continuation", "completion", "output", "response") if k in item), None)
    texts = texts or {}
    if "secret_sha256" in item and item.get("id") in texts:
        query = texts[item["id"]]
    elif "prompt" in item and isinstance(continuation, str):
        query = (item["prompt"], continuation)
    elif "sent_more" in item:
        query = item["sent_more"] if item.get("stereotype", True) else item["sent_less"]
    elif isinstance(item.get("text"), str):
        query = item["text"]
    else:
        raise InputError(f"items of {audit} hold no text to trace (fields: {', '.join(sorted(item))})")
    texts = query if isinstance(query, tuple) else (query,)
    if any(t.startswith("sha256:") for t in texts):
        raise InputError(f"items of {audit} keep only hashes of their texts (item_text: hash); audit again with "
                         f"item_text: scrubbed to trace them")
    return query


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)
