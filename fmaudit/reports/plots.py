"""Plots that reports share, drawn on a matplotlib ``Figure`` (never pyplot: no global backend switch
in the caller's process, e.g. a notebook)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from fmaudit.stats import Histogram


@dataclass
class Panel:
    """One histogram to draw: its title, x label and an optional vertical marker (a threshold)."""

    hist: Histogram
    title: str
    xlabel: str
    marker: Optional[float] = None


def plot_histograms(panels: list[Panel], path: Path, ylabel: str = "documents", yscale: str = "log",
                    panel_size: tuple[float, float] = (3.2, 2.8), dpi: int = 90) -> Path:
    """Side-by-side bar histograms (fixed bins, as :class:`~fmaudit.stats.Histogram` keeps them) as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel_size[0] * len(panels), panel_size[1]))
    for k, p in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        edges = p.hist.edges
        ax.bar(edges[:-1], p.hist.counts, width=edges[1] - edges[0], align="edge", color="#4c72b0")
        ax.set_yscale(yscale)
        if p.marker is not None:
            ax.axvline(p.marker, color="#c44e52", linestyle="--")
        ax.set_title(p.title, fontsize=9)
        ax.set_xlabel(p.xlabel, fontsize=8)
        if k == 0:
            ax.set_ylabel(ylabel, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
