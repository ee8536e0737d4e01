"""The documents people read, rendered from a run's JSON reports: ``report.html`` (one self-contained file:
inline CSS, plots embedded, no network request), ``report.md`` and ``MODEL_CARD.md`` (Hugging Face layout,
YAML metadata with ``model-index`` results).

Two audiences: ``internal`` shows samples and per-item evidence; ``public`` leaves out samples, ledger
details and anything per document, and says so. Both are anonymized (samples were scrubbed when recorded),
and neither shows a machine's absolute paths: paths are relative to the run, or names.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Iterable, Optional

import yaml

from fmaudit import __version__
from fmaudit.errors import UsageError
from fmaudit.reports.collect import Evidence, collect
from fmaudit.reports.lineage import build_lineage, lineage_svg
from fmaudit.reports.table import format_value

AUDIENCES = ("internal", "public")
PUBLIC_NOTE = ("This is the public version of the report: it leaves out samples, per-item evidence, ledger "
               "details and anything about single documents. The internal version holds them.")
# details keys that hold per-document or ledger data: never in the public report
PER_DOCUMENT_DETAILS = ("samples", "missed", "missed_ids", "ledger", "items", "documents")
TRAINING_EVAL_METRICS = ("final_val_loss", "final_val_perplexity")
_ABSOLUTE = re.compile(r"(?<![\w:/.])/(?:[^/\s\"'<>|]+/)+([^/\s\"'<>|]*)")


_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def strip_paths(text: str, root: Path) -> str:
    """Paths in ``text`` made relative to ``root``; any other absolute path shortened to its last part
    (embedded images left as they are)."""
    uris: list[str] = []

    def hold(m: re.Match) -> str:
        uris.append(m.group(0))
        return f"\x00{len(uris) - 1}\x00"

    text = _DATA_URI.sub(hold, text)
    text = text.replace(str(root) + "/", "").replace(str(root), ".")
    text = _ABSOLUTE.sub(lambda m: m.group(1) or ".", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: uris[int(m.group(1))], text)


def cut_words(text: str, limit: int = 240) -> str:
    """``text`` cut at a word boundary at or before ``limit`` characters (never mid-word), with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + " …"


def _data_uri(path: Path) -> str:
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _ci(check_or_metric) -> str:
    ci = check_or_metric.get("ci") if isinstance(check_or_metric, dict) else None
    return f"[{format_value(ci[0])}, {format_value(ci[1])}]" if ci else ""


def _numeric_metrics(report: dict) -> list[tuple[str, str]]:
    return [(k, format_value(v)) for k, v in report.get("metrics", {}).items()]


def _environment(ev: Evidence) -> dict:
    envs = [s.report.get("environment", {}) for s in ev.sections]
    revision = next((e["project_revision"] for e in envs if e.get("project_revision")), None)
    version = next((e["fmaudit_version"] for e in envs if e.get("fmaudit_version")), __version__)
    return {"fmaudit": version, "revision": revision}


def _comparisons(ev: Evidence) -> list[dict]:
    """Before/after rows of ``fmaudit audit --compare`` (the ``compare`` report's ``details.comparisons``,
    keyed ``audit:metric``: before, after, delta, test, p_value, q_value, significant, regression)."""
    rows = []
    for s in ev.by_kind("audit"):
        for key, row in (s.report.get("details", {}).get("comparisons") or {}).items():
            audit, _, metric = key.partition(":")
            rows.append({**row, "audit": audit, "metric": metric, "p_adjusted": row.get("q_value")})
    return rows


def _not_checked(ev: Evidence) -> list[dict]:
    return [{"report": s.name, "anchor": s.anchor, **row} for s in ev.sections
            for row in (s.report.get("details", {}).get("not_checked") or [])]


def _public_report(report: dict) -> dict:
    """The report without samples and per-document details (at any depth)."""

    def prune(value):
        if isinstance(value, dict):
            return {k: prune(v) for k, v in value.items() if k not in PER_DOCUMENT_DETAILS}
        if isinstance(value, list):
            return [prune(v) for v in value]
        return value

    return {**report, "samples": [], "details": prune(report.get("details", {}))}


def _context(ev: Evidence, audience: str) -> dict:
    sections = ev.sections
    if audience == "public":
        for s in sections:
            s.report = _public_report(s.report)
            s.items = None
    policy = next((s.report.get("policy") for s in sections if s.report.get("policy", {}).get("name")), None)
    return {"ev": ev, "sections": sections, "checks": ev.checks, "audience": audience,
            "public_note": PUBLIC_NOTE if audience == "public" else None, "policy": policy,
            "lineage_svg": lineage_svg(build_lineage(ev)), "inputs": ev.inputs, "env": _environment(ev),
            "comparisons": _comparisons(ev), "not_checked": _not_checked(ev), "title": ev.root.name or "run"}


def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    # Compiling the templates is most of a small job's rendering time: jinja2 keeps the compiled code in a
    # private per-user folder under the temp dir, keyed by each template's source (an edit recompiles it).
    env = Environment(loader=PackageLoader("fmaudit.reports", "templates"), bytecode_cache=_bytecode_cache(),
                      autoescape=select_autoescape(["html", "html.j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=format_value, ci=_ci, data_uri=_data_uri, cut=cut_words, metrics=_numeric_metrics)
    env.globals["op"] = {"max": "≤", "min": "≥", "equal": "="}
    return env


def _bytecode_cache():
    """jinja2's file cache of compiled templates, or None where its folder cannot be made (rendering still works)."""
    from jinja2 import FileSystemBytecodeCache

    try:
        return FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


def model_card_metadata(ev: Evidence) -> dict:
    """The YAML header of MODEL_CARD.md: tags, datasets and ``model-index`` results from the audits."""
    results = []
    for s in ev.by_kind("audit") + ev.by_kind("training"):
        wanted = TRAINING_EVAL_METRICS if s.kind == "training" else None  # a training run's size is not a result
        metrics = [{"type": k, "name": k, "value": v} for k, v in s.report.get("metrics", {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and (wanted is None or k in wanted)]
        if metrics:
            protocol = s.report.get("protocol") or {}
            dataset = protocol.get("prompt_set") or protocol.get("data") or s.name
            results.append({"task": {"type": "text-generation"},
                            "dataset": {"name": Path(str(dataset)).name, "type": s.name},
                            "metrics": metrics})
    meta = {"language": ["en"], "library_name": "transformers", "tags": ["fmaudit", "causal-lm", "audited"],
            "pipeline_tag": "text-generation"}
    if results:
        meta["model-index"] = [{"name": ev.root.name or "model", "results": results}]
    return meta


def render_documents(paths: Iterable, out: Optional[Path] = None, audience: str = "internal",
                     formats: Iterable[str] = ("html", "md", "card"),
                     names: Optional[dict[str, str]] = None) -> dict[str, Path]:
    """Render the documents of the run folders ``paths`` into ``out`` (default: the first folder); returns
    the written files by format (``names`` overrides file names, e.g. ``{"html": "summary.html"}``)."""
    if audience not in AUDIENCES:
        raise UsageError(f"unknown audience {audience!r}; available: {', '.join(AUDIENCES)}")
    paths = [Path(p) for p in paths]
    ev = collect(paths)
    out = Path(out) if out is not None else paths[0]
    out.mkdir(parents=True, exist_ok=True)
    ctx = _context(ev, audience)
    env = _env()
    suffix = "" if audience == "internal" else ".public"
    written = {}
    names = {"html": f"report{suffix}.html", "md": f"report{suffix}.md", "card": f"MODEL_CARD{suffix}.md",
             **(names or {})}
    for fmt in formats:
        template = {"html": "report.html.j2", "md": "report.md.j2", "card": "model_card.md.j2"}[fmt]
        extra = {"card_yaml": yaml.safe_dump(model_card_metadata(ev), sort_keys=False).strip()} if fmt == "card" else {}
        text = strip_paths(env.get_template(template).render(**ctx, **extra), ev.root)
        path = out / names[fmt]
        path.write_text(text, encoding="utf-8")
        written[fmt] = path
    return written
