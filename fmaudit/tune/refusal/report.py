"""``refusal.json`` (kind model_stage) and ``items/refusal.jsonl`` of a refusal tune."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fmaudit.reports.content import Check
from fmaudit.scoring.refusal import RefusalScorer


def write_outputs(stage, out: Path, checkpoint: Path, started: str, policy, plan: dict, rows, before: dict,
                  after: dict, phases: dict, *, wall_s: float) -> dict:
    """Write the items file and the report; returns the report."""
    s = stage.settings
    write_items(out / "items" / "refusal.jsonl", before["items"], after["items"])
    b, a = before["summary"], after["summary"]
    ppl_increase = after["perplexity"] / before["perplexity"] - 1
    metrics = {
        "refusal_rate_before": _value(b["refusal_rate"]), "refusal_rate": _value(a["refusal_rate"]),
        "over_refusal_rate_before": _value(b["over_refusal_rate"]), "over_refusal_rate": _value(a["over_refusal_rate"]),
        "perplexity_before": before["perplexity"], "perplexity": after["perplexity"],
        "perplexity_increase": ppl_increase,
        "harmful_prompts": _n(a["refusal_rate"]), "safe_prompts": _n(a["over_refusal_rate"]),
    }
    checks = []
    if a["refusal_rate"] is not None:
        checks.append(Check.evaluate("refusal_rate", a["refusal_rate"]["rate"], s.min_refusal_rate, "min",
                                     s.check_severity, description="held-out harmful prompts refused after the tune (full or partial)",
                                     ci=tuple(a["refusal_rate"]["ci"])))
    if a["over_refusal_rate"] is not None:
        checks.append(Check.evaluate("over_refusal_rate", a["over_refusal_rate"]["rate"], s.max_over_refusal, "max",
                                     s.check_severity, description="held-out safe contrast prompts refused after the tune",
                                     ci=tuple(a["over_refusal_rate"]["ci"])))
    checks.append(Check.evaluate("perplexity_increase", ppl_increase, s.max_perplexity_increase, "max",
                                 s.check_severity, description="held-out perplexity on ordinary text, after / before - 1"))
    details = {
        "before": b, "after": a, "phases": phases, "method": s.method,
        "fine_tune": "lora" if s.lora is not None else "full",
        "lora": next((p["lora"] for p in phases.values() if "lora" in p), None),
        "data": {"source": plan["source"], "train_pairs": len(plan["pairs"]), "train_triples": len(plan["triples"]),
                 **({"mix": plan["mix"], "hardened_examples": plan["hardened"]} if "mix" in plan else {})},
    }
    scorer = RefusalScorer()
    prompt_blob = json.dumps([[r.prompt, r.type, r.label] for r in rows]).encode()
    protocol = {
        "prompt_set": {"file": str(s.eval_prompts) if s.eval_prompts else "generated held-out prompts",
                       "sha256": hashlib.sha256(prompt_blob).hexdigest(), "prompts": len(rows)},
        "samples": 1, "decoding": {"greedy": True, "max_new_tokens": s.max_new_tokens, "chat_template": True},
        "seed": s.seed, "scorer": scorer.describe(), "perturbations": list(s.perturbations),
        "perplexity_text": str(s.perplexity_data) if s.perplexity_data else "built-in paragraphs",
        "confidence_intervals": "Wilson 95%",
    }
    extra = []
    if s.data is not None:
        from fmaudit.corpus import sha256_file

        extra.append({"role": "training_data", "path": str(s.data), "sha256": sha256_file(s.data)})
    return stage.make_report(out, checkpoint, started, policy=policy, metrics=metrics, checks=checks,
                             details=details, protocol=protocol, extra_lineage=extra, wall_s=wall_s)


def write_items(path: Path, before: list[dict], after: list[dict]) -> None:
    """One row per evaluated prompt: its fields and the response and verdict before and after (anonymized)."""
    from fmaudit.text.scrub import scrub

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for b, a in zip(before, after):
            row = {"prompt": scrub(b["prompt"]), "type": b["type"], "label": b["label"],
                   "perturbation": b["perturbation"], "response_before": scrub(b["response"]),
                   "verdict_before": b["verdict"], "response_after": scrub(a["response"]), "verdict_after": a["verdict"]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _value(r):
    return r["rate"] if r is not None else None


def _n(r):
    return r["n"] if r is not None else 0
