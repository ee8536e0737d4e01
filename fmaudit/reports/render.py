"""HTML rendering of a reports folder (``summary.html``), for auditors who read rather than query."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from fmaudit.reports.envelope import SUMMARY, read_reports
from fmaudit.reports.table import format_value


def render_html(reports_dir: str | os.PathLike, sources: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``<reports_dir>/summary.html`` from ``summary.json`` there and the envelopes there (or in
    ``sources``; plots are linked relative to ``reports_dir``)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    reports_dir = Path(reports_dir)
    summary = json.loads((reports_dir / SUMMARY).read_text(encoding="utf-8"))
    reports = []
    for d in list(sources) or [reports_dir]:
        for r in read_reports(d):
            r["plots"] = [os.path.relpath(Path(d) / p, reports_dir) for p in r["plots"]]
            reports.append(r)
    env = Environment(loader=PackageLoader("fmaudit.reports", "templates"), autoescape=select_autoescape())
    env.filters["num"] = format_value
    policy = reports[0]["policy"] if reports else None
    html = env.get_template("summary.html").render(summary=summary, reports=reports, policy=policy)
    path = reports_dir / "summary.html"
    path.write_text(html, encoding="utf-8")
    return path
