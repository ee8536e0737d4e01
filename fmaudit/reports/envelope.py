"""The report envelope shared by every stage, training run and audit, and the run summary.

:func:`make_report` builds a dict in the published schema (``report.schema.json``),
:func:`write_report` validates it and writes ``<dir>/<stage>.json``, and :func:`write_summary`
collects every check of a folder of reports into ``summary.json``.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional

from fmaudit.corpus import write_json_atomic
from fmaudit.errors import EXIT_CHECK_FAILED, EXIT_OK, InputError
from fmaudit.reports.environment import environment

SCHEMA_VERSION = "2.0"
KINDS = ("data_stage", "training", "model_stage", "audit")
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
SUMMARY = "summary.json"
MANIFEST = "manifest.json"


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def make_report(
    stage: str,
    run_id: str,
    started_at: str,
    *,
    kind: str = "data_stage",
    policy=None,
    section: Optional[dict] = None,
    inputs: Iterable[dict] = (),
    counts: Optional[dict] = None,
    metrics: Optional[dict] = None,
    checks: Iterable = (),
    samples: Iterable[dict] = (),
    details: Optional[dict] = None,
    plots: Iterable[str] = (),
    timings: Optional[dict] = None,
    protocol: Optional[dict] = None,
    lineage: Iterable[dict] = (),
) -> dict:
    """Build one report envelope. ``stage`` names the producer (a data stage, ``train``, a model stage or an
    audit), ``kind`` says which of :data:`KINDS` it is; document ``counts`` belong to data stages (required
    there, optional elsewhere). ``policy`` is a :class:`fmaudit.policy.Policy` (or None)."""
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}; available: {', '.join(KINDS)}")
    if counts is None and kind == "data_stage":
        counts = {"in": 0, "kept": 0, "dropped": {}, "quarantined": 0}
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "stage": stage,
        "run_id": run_id,
        "started_at": started_at,
        "ended_at": now_iso(),
        "policy": {
            "name": getattr(policy, "name", None),
            "file": str(policy.path) if getattr(policy, "path", None) else None,
            "sha256": getattr(policy, "sha256", None),
            "section": section,
        },
        "inputs": list(inputs),
        **({"counts": counts} if counts is not None else {}),
        "metrics": metrics or {},
        "checks": [c.to_json() if hasattr(c, "to_json") else c for c in checks],
        "samples": list(samples),
        "details": details or {},
        "plots": list(plots),
        "environment": environment(),
        "timings": timings or {"wall_s": 0.0},
    }
    if protocol is not None:
        report["protocol"] = protocol
    if lineage:
        report["lineage"] = list(lineage)
    return _json_safe(report)


def validate_report(report: dict) -> None:
    """Raise jsonschema.ValidationError if ``report`` does not follow the published schema."""
    _validator().validate(report)


@lru_cache(maxsize=1)
def _validator():
    """The schema's validator, built once per process (``jsonschema.validate`` rebuilds it and checks the schema
    against its meta-schema on every call: most of a small job's report time). The shipped schema is checked
    against the meta-schema by the tests (``tests/test_pipeline.py``), not on every run."""
    import jsonschema

    return jsonschema.validators.validator_for(schema())(schema())


def write_report(reports_dir: str | os.PathLike, report: dict) -> Path:
    """Validate and write ``<reports_dir>/<stage>.json`` atomically."""
    validate_report(report)
    path = Path(reports_dir) / f"{report['stage']}.json"
    write_json_atomic(path, report)
    return path


def read_json(path: Path) -> Any:
    """A JSON file of a reports folder; InputError naming the file when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable JSON file: {e}") from None


def read_reports(reports_dir: str | os.PathLike) -> list[dict]:
    """Every report envelope in a folder (not the summary), sorted by name; reports of schema 1.0 (before
    report kinds) read as data stages, or training for ``train``."""
    out = []
    for p in sorted(Path(reports_dir).glob("*.json")):
        if p.name in (SUMMARY, MANIFEST):
            continue
        data = read_json(p)
        if isinstance(data, dict) and data.get("schema_version") and "stage" in data:
            data.setdefault("kind", "training" if data["stage"] == "train" else "data_stage")
            out.append(data)
    return out


def write_summary(reports_dir: str | os.PathLike, run_id: str, sources: Iterable[str | os.PathLike] = ()) -> dict:
    """Write ``summary.json`` in ``reports_dir``: every check of every report there (or, given ``sources``,
    of every report in those folders), and the run's verdict."""
    reports = [r for d in (list(sources) or [reports_dir]) for r in read_reports(d)]
    checks = [{"report": r["stage"], **c} for r in reports for c in r["checks"]]
    failed = [c for c in checks if not c["passed"] and c["severity"] == "error"]
    summary = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_at": now_iso(),
        "reports": [r["stage"] for r in reports],
        "kinds": {r["stage"]: r["kind"] for r in reports},
        "checks": checks,
        "passed": not failed,
        "failed": [f"{c['report']}:{c['name']}" for c in failed],
        "exit_code": EXIT_CHECK_FAILED if failed else EXIT_OK,
    }
    write_json_atomic(Path(reports_dir) / SUMMARY, _json_safe(summary))
    return summary


def _json_safe(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with None, and numpy scalars with Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
