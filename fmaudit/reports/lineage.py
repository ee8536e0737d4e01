"""The lineage of a run's evidence, from raw data through each data stage and the training run to the audited
checkpoint, as a graph with hashes, drawn as an inline SVG (no script, no network).

Edges come from the reports themselves: data stages follow each other in pipeline order; a training run
follows the data job whose report files it lists as inputs (by sha256); model stages and audits follow the
producer of the checkpoint their ``lineage`` names (by sha256; a producer marks what it made with
``role: output``), or, when a report names none, the last producer before them in run order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from fmaudit.reports.collect import Evidence

COLUMN_W, ROW_H, BOX_W, BOX_H = 190, 62, 160, 44


@dataclass
class Node:
    id: str
    label: str
    detail: str  # a short hash or count
    column: int = 0
    row: int = 0


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)


def build_lineage(ev: Evidence) -> Graph:
    g = Graph()
    produced: dict[str, str] = {}  # sha256 of an artefact -> node that produced (or holds) it
    last_by_folder: dict[str, str] = {}
    for s in ev.by_kind("data_stage"):  # each data job: raw data, then its stages in pipeline order
        if s.folder not in last_by_folder:
            inputs = s.report.get("inputs", [])
            detail = f"{len(inputs)} file(s)" + (f" · {inputs[0]['sha256'][:8]}" if inputs else "")
            g.nodes.append(Node(f"{s.anchor}-inputs", "raw data", detail))
            last_by_folder[s.folder] = g.nodes[-1].id
        if s.name == "pipeline":
            continue  # the pipeline report sums the stages: not a step of its own
        g.nodes.append(Node(s.anchor, s.name, s.report.get("run_id", "")[:15]))
        g.edges.append((last_by_folder[s.folder], s.anchor))
        last_by_folder[s.folder] = s.anchor
    for s in ev.by_kind("data_stage"):  # a job's report files stand for its output: its last stage
        produced[s.sha256] = last_by_folder[s.folder]
    previous = None
    for s in ev.sections:
        if s.kind == "data_stage":
            continue
        lineage = s.report.get("lineage", [])
        named = s.report.get("inputs", []) + lineage
        sources = {produced[i["sha256"]] for i in named if i.get("sha256") in produced}
        if not sources and s.kind == "training":
            sources = set(last_by_folder.values())
        if not sources and previous is not None:
            sources = {previous}
        detail = lineage[0]["sha256"][:8] if lineage else s.report.get("run_id", "")[:15]
        g.nodes.append(Node(s.anchor, s.name, detail))
        g.edges += [(src, s.anchor) for src in sorted(sources)]
        produced[s.sha256] = s.anchor
        for entry in lineage:  # what this producer made (a checkpoint an audit names): role "output"
            if entry.get("role") == "output":
                produced[entry["sha256"]] = s.anchor
        previous = s.anchor
    _layout(g)
    return g


def _layout(g: Graph) -> None:
    """Columns by depth (longest path from a source), rows in order within a column."""
    depth: dict[str, int] = {}
    incoming: dict[str, list[str]] = {}
    for a, b in g.edges:
        incoming.setdefault(b, []).append(a)
    for n in g.nodes:  # nodes come in flow order, so every source is placed before its targets
        depth[n.id] = max((depth.get(a, 0) + 1 for a in incoming.get(n.id, [])), default=0)
    rows: dict[int, int] = {}
    for n in g.nodes:
        n.column = depth[n.id]
        n.row = rows.get(n.column, 0)
        rows[n.column] = n.row + 1


def lineage_svg(g: Graph) -> str:
    """The graph as an SVG element, drawn left to right in the order the data flowed."""
    if not g.nodes:
        return ""
    pos = {n.id: (10 + n.column * COLUMN_W, 10 + n.row * ROW_H) for n in g.nodes}
    width = 20 + (max(n.column for n in g.nodes) + 1) * COLUMN_W
    height = 20 + max(n.row + 1 for n in g.nodes) * ROW_H
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#667"/></marker></defs>']
    for a, b in g.edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        parts.append(f'<line x1="{x1 + BOX_W}" y1="{y1 + BOX_H / 2}" x2="{x2}" y2="{y2 + BOX_H / 2}" '
                     f'stroke="#667" marker-end="url(#arrow)"/>')
    for n in g.nodes:
        x, y = pos[n.id]
        parts.append(f'<a href="#{escape(n.id)}"><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" '
                     f'fill="#f3f5fa" stroke="#8892a8"/><text x="{x + 8}" y="{y + 18}" font-size="12" '
                     f'font-weight="600">{escape(n.label[:24])}</text><text x="{x + 8}" y="{y + 34}" font-size="10" '
                     f'fill="#555">{escape(n.detail[:28])}</text></a>')
    parts.append("</svg>")
    return "".join(parts)
