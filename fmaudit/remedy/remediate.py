"""``fmaudit remediate TRACE --policy P --out DIR``: turn a trace into a policy change and re-run the filter.

Three remediations, each written as a new policy (``DIR/policy.yaml``, the old one plus the change, with a
header saying what changed and why), never as a hand edit of the data:

- ``drop``: a ``drop_ids`` stage first in the pipeline, listing the traced documents;
- ``threshold``: the toxicity stage's threshold for the label the traced documents came nearest to, lowered
  to just below the lowest of their scores; the stage's sensitivity table says what else it removes;
- ``augment``: the cda stage in ``augment`` mode, so the traced documents (and every other gendered one)
  get counterfactual twins.

The filter then runs with the new policy into ``DIR/filtered`` (run again, it resumes). The policy given must
be the one the traced data run used (its sha256 is in the run's reports), else the change would not be the
only difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import yaml

from fmaudit.corpus import write_json_atomic
from fmaudit.errors import InputError, UsageError
from fmaudit.reports.envelope import read_json

ACTIONS = ("drop", "threshold", "augment")
REMEDIATION_FILE = "remediation.json"


def _read_trace(path: Path) -> dict:
    path = path / "trace.json" if path.is_dir() else path
    trace = read_json(path)
    if not isinstance(trace, dict) or trace.get("format") != "fmaudit-trace-1" or not trace.get("documents"):
        raise InputError(f"{path}: not a trace with documents (written by `fmaudit trace`)")
    return trace


def _job_policy(job: Path) -> dict:
    pipeline = job / "reports" / "pipeline.json"
    if not pipeline.is_file():
        raise InputError(f"{job}: not a finished filter job (no reports/pipeline.json)")
    return read_json(pipeline)


def _propose(action: str, trace: dict, data: dict, job: Path, min_share: float) -> tuple[dict, dict]:
    """The changed policy data and a description of the change."""
    docs = [d for d in trace["documents"] if d["score"] > 0] or trace["documents"]
    ids = sorted({d["id"].split("#")[0] for d in docs})  # a cda twin is dropped with its source document
    why = f"traced behind {trace['audit']}:{trace['check']['name']} (fmaudit trace, top {len(docs)} documents)"
    stages = list(data.get("stages") or [])
    if action == "drop":
        stages.insert(0, {"stage": "drop_ids", "ids": ids, "reason": "traced", "why": why})
        return {**data, "stages": stages}, {"action": "drop", "ids": ids, "why": why}
    if action == "threshold":
        entry = next((s for s in stages if s.get("stage") == "toxicity"), None)
        scored = [d for d in docs if (d.get("toxicity") or {}).get("share_of_threshold") is not None]
        if entry is None or not scored:
            raise UsageError("no toxicity stage scored the traced documents: choose --action drop or augment")
        label = max((d["toxicity"]["nearest_label"] for d in scored), key=[d["toxicity"]["nearest_label"]
                                                                           for d in scored].count)
        lowest = min(d["toxicity"]["scores"].get(label, 0.0) for d in scored)
        old = dict(entry.get("thresholds") or {"toxicity": 0.5})
        new_t = round(max(min_share * old.get(label, 0.5), lowest - 0.005), 4)
        entry = {**entry, "thresholds": {**old, label: new_t}}
        stages = [entry if s.get("stage") == "toxicity" else s for s in stages]
        table = read_json(job / "reports" / "toxicity.json")["details"]["threshold_sensitivity"]["table"].get(label, {})
        return {**data, "stages": stages}, {"action": "threshold", "label": label, "old": old.get(label), "new": new_t,
                                            "why": why, "sensitivity": table,
                                            "also_removed_note": "documents at or above each threshold, from the "
                                                                 "traced run's toxicity report"}
    entry = next((s for s in stages if s.get("stage") == "cda"), {"stage": "cda"})
    entry = {**entry, "mode": "augment"}
    stages = [s for s in stages if s.get("stage") != "cda"] + [entry]
    return {**data, "stages": stages}, {"action": "augment", "ids": ids, "why": why}


def remediate(trace_path: str | Path, policy_path: str | Path, out: str | Path, *, action: str = "drop",
              inputs: Optional[list] = None, workers: Optional[int] = None, progress: bool = True,
              min_share: float = 0.2) -> dict:
    """Write the remediated policy to ``out/policy.yaml``, re-run the filter into ``out/filtered``; returns
    the remediation record (also ``out/remediation.json``)."""
    from fmaudit.pipeline.runner import run_filter
    from fmaudit.policy import load_policy, resolve_policy_path

    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}; available: {', '.join(ACTIONS)}")
    trace = _read_trace(Path(trace_path))
    job = Path(trace["job_dir"])
    original = load_policy(policy_path)
    ran = _job_policy(job)
    if ran["policy"]["sha256"] != original.sha256:
        raise InputError(f"{original.path}: not the policy of the traced data run {job} (sha256 "
                         f"{original.sha256[:12]} against {str(ran['policy']['sha256'])[:12]}); give the policy "
                         f"that run used")
    data = yaml.safe_load(Path(resolve_policy_path(policy_path)).read_text(encoding="utf-8"))
    changed, change = _propose(action, trace, data, job, min_share)
    changed["name"] = f"{data.get('name', 'policy')}-remediated"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"# {change['why']}\n# remediation: {action}; made by `fmaudit remediate` from {original.path.name} "
              f"(sha256 {original.sha256[:12]})\n")
    (out / "policy.yaml").write_text(header + yaml.safe_dump(changed, sort_keys=False, allow_unicode=True),
                                     encoding="utf-8")
    new_policy = load_policy(out / "policy.yaml")
    sources = inputs or [i["path"] for i in ran["inputs"]]
    result = run_filter(new_policy, sources, out / "filtered", workers=workers, progress=progress)
    record = {"format": "fmaudit-remediation-1", "trace": str(trace_path), "finding": f"{trace['audit']}:"
              f"{trace['check']['name']}", "change": change, "policy": str(out / "policy.yaml"),
              "policy_sha256": new_policy.sha256, "original_policy": str(original.path),
              "original_job": str(job), "filtered": str(out / "filtered"), "counts": result.counts,
              "filter_passed": result.summary["passed"]}
    write_json_atomic(out / REMEDIATION_FILE, record)
    return record


def format_remediation(record: dict) -> str:
    change = record["change"]
    if change["action"] == "threshold":
        what = (f"toxicity threshold for {change['label']}: {change['old']} -> {change['new']}; documents at or "
                f"above each threshold in the traced run: {json.dumps(change['sensitivity'])}")
    else:
        what = f"{change['action']}: {len(change.get('ids', []))} documents ({', '.join(change.get('ids', [])[:5])}...)"
    c = record["counts"]
    return (f"{record['finding']}: {what}\npolicy: {record['policy']}\nfilter: read {c['in']}, kept {c['kept']}, "
            f"dropped {sum(c['dropped'].values())} {dict(c['dropped'])} -> {record['filtered']}")
