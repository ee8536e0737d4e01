"""Plots of attributions and influence, drawn on a matplotlib ``Figure`` (never pyplot: the caller's backend,
e.g. a notebook's, is left alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

DPI = 90


def _labels(tokens: Sequence[str]) -> list[str]:
    return [repr(t)[1:-1] if t.strip() else repr(t) for t in tokens]


def attribution_heatmap(matrix: Sequence[Sequence[float]], input_tokens: Sequence[str],
                        output_tokens: Sequence[str], title: str, path: Path) -> Path:
    """Token-level attribution: one row per target token, one column per prompt token, diverging colours
    centred on 0, values written in the cells when they fit."""
    from matplotlib.figure import Figure

    m = np.asarray(matrix, dtype=float)
    fig = Figure(figsize=(max(4.0, 0.6 * m.shape[1] + 2), max(2.5, 0.4 * m.shape[0] + 1.5)))
    ax = fig.add_subplot(1, 1, 1)
    bound = float(np.abs(m).max()) or 1.0
    image = ax.imshow(m, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(range(m.shape[1]), _labels(input_tokens), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(m.shape[0]), _labels(output_tokens), fontsize=8)
    ax.set_xlabel("prompt token", fontsize=8)
    ax.set_ylabel("target token", fontsize=8)
    if m.size <= 200:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="log-prob attribution")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def sequence_bars(rows: dict[str, Sequence[float]], input_tokens: Sequence[str], title: str, path: Path) -> Path:
    """Sequence-level attribution of each method, as grouped bars per prompt token."""
    from matplotlib.figure import Figure

    n = len(input_tokens)
    fig = Figure(figsize=(max(4.0, 0.7 * n + 2), 3.0))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(rows))
    for k, (name, values) in enumerate(rows.items()):
        ax.bar(np.arange(n) + k * width - 0.4 + width / 2, values, width=width, label=name)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xticks(range(n), _labels(input_tokens), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("attribution to log p(target)", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def influence_bars(doc_ids: Sequence[str], scores: Sequence[float], layers: Sequence[dict], title: str,
                   path: Path) -> Path:
    """Most and least influential documents: one horizontal bar per document, split by layer."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, max(2.5, 0.3 * len(doc_ids) + 1.2)))
    ax = fig.add_subplot(1, 1, 1)
    names = sorted({k for d in layers for k in d}, key=lambda k: int(k.split()[-1]))
    y = np.arange(len(doc_ids))[::-1]
    pos_left, neg_left = np.zeros(len(doc_ids)), np.zeros(len(doc_ids))
    for name in names:
        v = np.array([d.get(name, 0.0) for d in layers])
        left = np.where(v >= 0, pos_left, neg_left)
        ax.barh(y, v, left=left, label=name)
        pos_left += np.where(v >= 0, v, 0)
        neg_left += np.where(v < 0, v, 0)
    ax.plot(scores, y, "k|", markersize=10, label="total")
    ax.axvline(0, color="black", linewidth=0.5)
    ax.set_yticks(y, list(doc_ids), fontsize=7)
    ax.set_xlabel("influence score (by layer)", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: same inputs, same bytes
    return path
