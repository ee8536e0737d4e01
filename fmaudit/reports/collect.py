"""Gather the evidence of one or more run folders for the documents people read (``fmaudit report``).

A run folder is anything fmaudit wrote: a filter job, a training run, a model stage's output, an audit, a
demo folder holding several of them. :func:`collect` finds every folder of report envelopes below the
given ones, orders them as the data flowed (data stages in pipeline order, training, model stages,
audits), lists every check (failed first) with a link to its evidence, and keeps every path relative to
the first folder, so a document never shows a machine's absolute paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from fmaudit.corpus import sha256_file
from fmaudit.errors import InputError
from fmaudit.reports.envelope import read_json, read_reports

KIND_ORDER = {"data_stage": 0, "training": 1, "model_stage": 2, "audit": 3}
KIND_TITLES = {"data_stage": "Data stage", "training": "Training run", "model_stage": "Model stage", "audit": "Audit"}
SKIP_DIRS = {"data", "dropped", "held", "quarantine", "checkpoints", "tokens", "items", ".fmaudit", "corpus"}


@dataclass
class Section:
    """One report envelope and what belongs to it."""

    anchor: str
    name: str
    kind: str
    folder: str  # the report folder, relative to the evidence root
    report: dict
    sha256: str  # of the report file
    plots: list[tuple[str, Path]] = field(default_factory=list)  # (relative name, absolute file)
    items: Optional[str] = None  # items/<name>.jsonl of an audit, relative to the root

    @property
    def title(self) -> str:
        return f"{KIND_TITLES.get(self.kind, self.kind)}: {self.name}"


@dataclass
class Evidence:
    root: Path
    sections: list[Section]
    checks: list[dict]
    failed: list[str]
    inputs: list[dict]

    @property
    def passed(self) -> bool:
        return not self.failed

    def by_kind(self, kind: str) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]


def report_folders(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every folder holding report envelopes at or below ``paths`` (data and checkpoint folders skipped)."""
    found: list[Path] = []
    for start in paths:
        start = Path(start)
        if not start.is_dir():
            raise InputError(f"{start}: no such run folder")
        stack = [start]
        while stack:
            d = stack.pop()
            if read_reports(d):
                found.append(d)
                summary_of(d)  # a damaged summary is an input error naming the file
            stack += sorted((c for c in d.iterdir() if c.is_dir() and c.name not in SKIP_DIRS), reverse=True)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise InputError(f"{', '.join(str(p) for p in paths)}: no fmaudit reports found (a filter job, training run, "
                         "model stage or audit folder holds a reports/ folder)")
    return unique


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix() or "."
    except ValueError:
        return path.name  # outside the root: its name only, never an absolute path


def _order(section: Section, stage_order: dict[str, list[str]]) -> tuple:
    order = stage_order.get(section.folder, [])
    position = order.index(section.name) if section.name in order else len(order)
    return (KIND_ORDER.get(section.kind, 9), section.report.get("started_at", ""), section.folder, position,
            section.name)


def collect(paths: Iterable[str | os.PathLike]) -> Evidence:
    """The evidence of the run folders ``paths`` (the first is the root every path is relative to)."""
    paths = [Path(p) for p in paths]
    folders = report_folders(paths)
    root = paths[0].resolve()
    sections: list[Section] = []
    stage_order: dict[str, list[str]] = {}
    used: set[str] = set()
    for folder in folders:
        rel = _relative(folder, root)
        for report in read_reports(folder):
            report_file = folder / f"{report['stage']}.json"
            anchor = _anchor(f"{rel}-{report['stage']}", used)
            if report["stage"] == "pipeline":
                stage_order[rel] = list((report["policy"].get("section") or {}).get("stages") or [])
            plots = [(_relative(folder / p, root), folder / p) for p in report.get("plots", []) if (folder / p).is_file()]
            items_file = folder.parent / "items" / f"{report['stage']}.jsonl"
            items = _relative(items_file, root) if items_file.is_file() else None
            sections.append(Section(anchor, report["stage"], report["kind"], rel, report, sha256_file(report_file),
                                    plots, items))
    sections.sort(key=lambda s: _order(s, stage_order))
    checks = []
    for s in sections:
        for c in s.report["checks"]:
            evidence = [f"#{s.anchor}"] + [f"#{s.anchor}-plot-{i}" for i in range(len(s.plots))]
            checks.append({"report": s.name, "kind": s.kind, "folder": s.folder, "anchor": s.anchor,
                           "evidence": evidence, "items_file": s.items, **c})
    failed = [f"{c['report']}:{c['name']}" for c in checks if not c["passed"] and c["severity"] == "error"]
    checks.sort(key=lambda c: (c["passed"], c["severity"] != "error"))  # failed first, stable otherwise
    inputs = _inputs(sections)
    return Evidence(root, sections, checks, failed, inputs)


def _inputs(sections: list[Section]) -> list[dict]:
    """Input files of the runs, with sha256 (paths shown by name: the folders they came from are machine-local)."""
    seen: dict[tuple, dict] = {}
    for s in sections:
        for i in s.report.get("inputs", []):
            key = (Path(i["path"]).name, i["sha256"])
            seen.setdefault(key, {"name": key[0], "sha256": i["sha256"], "bytes": i.get("bytes"),
                                  "used_by": []})["used_by"].append(s.name)
    return list(seen.values())


def _anchor(text: str, used: set[str]) -> str:
    base = "".join(c if c.isalnum() else "-" for c in text).strip("-").lower() or "section"
    anchor, n = base, 1
    while anchor in used:
        n += 1
        anchor = f"{base}-{n}"
    used.add(anchor)
    return anchor


def summary_of(folder: Path) -> Optional[dict]:
    """A folder's ``summary.json`` when it has one (None otherwise)."""
    path = folder / "summary.json"
    return read_json(path) if path.is_file() else None
