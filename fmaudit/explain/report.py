"""Report envelopes of explanations: ``explain.json`` (attributions, optionally with influence) and
``influence.json``, with their plots, in the common envelope (kind ``audit``: read-only measurements of a
checkpoint)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Optional, Sequence

from fmaudit.explain import plots
from fmaudit.reports.content import Check

# Integrated gradients is complete up to its Riemann-sum error: |delta| <= ABS + REL x |log-prob change|.
DELTA_ABS, DELTA_REL = 0.01, 0.05


def _slug(text: str, i: int) -> str:
    return f"{i:02d}-" + (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24] or "x")


def prompts_protocol(prompts: Sequence[str]) -> dict:
    blob = json.dumps(list(prompts), ensure_ascii=False).encode()
    return {"prompts": len(prompts), "prompts_sha256": hashlib.sha256(blob).hexdigest()}


def attribution_section(explanations: Sequence, reports_dir: Path, scrub) -> tuple[dict, list, list[str], dict]:
    """``(metrics, checks, plot paths relative to reports_dir, details)`` of attributions; prompts and targets
    are anonymized with ``scrub`` (the token lists too: a token shown must survive in the scrubbed text)."""
    metrics: dict = {"prompts": len(explanations)}
    checks: list = []
    plot_paths: list[str] = []
    rows = []
    worst: dict[str, float] = {}
    for i, e in enumerate(explanations):
        row = e.to_json()
        row["prompt"], row["target"] = scrub(e.prompt), scrub(e.target)
        row["input_tokens"] = _masked(e.input_tokens, e.prompt, row["prompt"])
        row["output_tokens"] = _masked(e.output_tokens, e.target, row["target"])
        row.pop("input_ids"), row.pop("target_ids")  # ids decode to the raw text
        rows.append(row)
        slug = _slug(row["prompt"], i)
        for name, a in e.attributions.items():
            rel = f"explain_plots/{slug}-{name}.png"
            plots.attribution_heatmap(a.token_attr, row["input_tokens"], row["output_tokens"],
                                      f"{name}: {row['prompt'][:40]!r} -> {row['target'][:30]!r}", reports_dir / rel)
            plot_paths.append(rel)
            change = max(abs(sum(a.logprob_change)), max(map(abs, a.logprob_change)))
            ratio = abs(a.convergence_delta) / (DELTA_ABS + DELTA_REL * change)
            worst[name] = max(worst.get(name, 0.0), ratio)
            metrics[f"{name}_max_abs_delta"] = max(metrics.get(f"{name}_max_abs_delta", 0.0),
                                                    abs(a.convergence_delta))
        rel = f"explain_plots/{slug}-sequence.png"
        plots.sequence_bars({n: a.seq_attr for n, a in e.attributions.items()}, row["input_tokens"],
                            f"sequence attribution: {row['prompt'][:50]!r}", reports_dir / rel)
        plot_paths.append(rel)
    metrics["mean_target_logprob"] = sum(e.target_logprob for e in explanations) / max(1, len(explanations))
    for name, ratio in worst.items():
        if name == "feature_ablation":
            continue  # ablation has no completeness axiom: its gap is reported, not judged
        checks.append(Check.evaluate(
            f"{name}_completeness", round(ratio, 4), 1.0, "max", "warning",
            f"largest |sum of attributions - log-prob change| over the prompts, in units of "
            f"{DELTA_ABS} + {DELTA_REL} x |change| (above 1: too few steps or samples)"))
    return metrics, checks, plot_paths, {"attribution": rows}


def counterfactual_section(results: Sequence, scrub) -> tuple[dict, dict]:
    """``(metrics, details)`` of counterfactual attributions (texts anonymized)."""
    from fmaudit.explain.ranking import visible_token

    rows = []
    for r in results:
        row = r.to_json()
        shown = scrub(r.prompt)
        hidden = set()
        for seg in row["segments"]:  # a swap names its original (the pair lists are public): hide both
            if visible_token(seg["original"], r.prompt, shown) != seg["original"]:
                hidden.add(seg["swap"])
                seg["original"] = seg["swap"] = "<SCRUBBED>"
        cf = r.counterfactual_prompt
        for word in hidden:
            cf = re.sub(rf"\b{re.escape(word)}\b", "<SCRUBBED>", cf)
        row.update(prompt=shown, counterfactual_prompt=scrub(cf), target=scrub(r.target),
                   counterfactual_target=scrub(r.counterfactual_target))
        rows.append(row)
    changes = [abs(r.logprob_change) for r in results if r.segments]
    metrics = {"counterfactual_prompts": len(changes),
               "counterfactual_max_abs_logprob_change": max(changes) if changes else None}
    return metrics, {"counterfactual": rows}


def _masked(tokens: Sequence[str], original: str, scrubbed: str) -> list[str]:
    from fmaudit.explain.ranking import visible_token

    return [visible_token(t, original, scrubbed) for t in tokens]


def influence_section(result, reports_dir: Path) -> tuple[dict, list[str], dict]:
    """``(metrics, plot paths, details)`` of an :class:`~fmaudit.explain.ranking.InfluenceResult`."""
    metrics = {"queries": len(result.queries), "corpus_documents": result.corpus_size,
               "candidates_scored": result.candidates_scored, "coverage": result.coverage,
               "factors_cached": result.factors_cached, "fit_seconds": round(result.fit_seconds, 3),
               "score_seconds": round(result.score_seconds, 3)}
    plot_paths = []
    for i, q in enumerate(result.queries):
        docs = q.most + [d for d in q.least if d.doc_id not in {m.doc_id for m in q.most}]
        rel = f"influence_plots/{_slug(q.query, i)}.png"
        plots.influence_bars([d.doc_id for d in docs], [d.score for d in docs], [d.per_layer for d in docs],
                             f"influence on {q.query[:50]!r}", reports_dir / rel)
        plot_paths.append(rel)
    return metrics, plot_paths, {"influence": result.to_json()}


def write_explain_report(reports_dir: str | Path, *, stage: str, run_id: str, started_at: str, checkpoint: str,
                         checkpoint_sha256: str, explanations: Sequence = (), counterfactuals: Sequence = (),
                         influence=None,
                         data_dir: Optional[str] = None, protocol: Optional[dict] = None, policy=None,
                         section: Optional[dict] = None, wall_s: float = 0.0) -> dict:
    """Build, validate and write ``<reports_dir>/<stage>.json``; returns the report."""
    from fmaudit.reports import make_report, write_report
    from fmaudit.text.scrub import scrub

    t0 = time.perf_counter()
    reports_dir = Path(reports_dir)
    metrics, checks, plot_paths, details = {}, [], [], {}
    if explanations:
        m, checks, p, d = attribution_section(explanations, reports_dir, scrub)
        metrics.update(m), plot_paths.extend(p), details.update(d)
    if counterfactuals:
        m, d = counterfactual_section(counterfactuals, scrub)
        metrics.update(m), details.update(d)
    inputs = [{"path": str(checkpoint), "sha256": checkpoint_sha256}]
    if influence is not None:
        m, p, d = influence_section(influence, reports_dir)
        metrics.update({f"influence_{k}" if k in metrics else k: v for k, v in m.items()})
        plot_paths.extend(p), details.update(d)
        if data_dir is not None:
            inputs.append({"path": str(data_dir), "sha256": influence.data_sha256})
    report = make_report(stage, run_id, started_at, kind="audit", policy=policy, section=section, inputs=inputs,
                         metrics=metrics, checks=checks, details=details, plots=plot_paths, protocol=protocol,
                         timings={"wall_s": round(wall_s + time.perf_counter() - t0, 3)})
    write_report(reports_dir, report)
    return report
