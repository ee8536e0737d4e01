"""``summary.html`` of a reports folder: the internal HTML report of that folder (and of any report folders
below it), written by every filter job and demo run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def render_html(reports_dir: str | os.PathLike, sources: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``<reports_dir>/summary.html`` from the reports in ``reports_dir`` and below it (and in ``sources``
    outside it); plots are embedded, so the page stands alone."""
    from fmaudit.reports.document import render_documents

    root = Path(reports_dir).resolve()
    outside = [Path(s) for s in sources if root not in Path(s).resolve().parents and Path(s).resolve() != root]
    return render_documents([root, *outside], root, formats=("html",), names={"html": "summary.html"})["html"]
