"""The data-job driver behind ``fmaudit filter``.

It reads the corpus once, in order, cutting it into shards of ``pipeline.shard_size`` records; skips
shards already committed; hands the rest to an engine; then merges every shard's statistics (in shard
order, from disk, so resumed runs report the whole job) into one report per stage, the pipeline's own
report with the accounting identity, and ``reports/summary.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from tqdm import tqdm

from fmaudit.corpus import expand_inputs, read_corpus, sha256_file
from fmaudit.errors import UsageError
from fmaudit.pipeline.engines import make_engine
from fmaudit.pipeline.layout import JobLayout, write_manifest
from fmaudit.pipeline.worker import PIPELINE, ProcessorSpec, ShardTask
from fmaudit.policy import Policy, StageSpec
from fmaudit.reports.render import render_html
from fmaudit.reports.envelope import make_report, new_run_id, now_iso, write_json_atomic, write_report, write_summary
from fmaudit.stages import get_stage
from fmaudit.reports.content import Check, ReportContext, StageReport
from fmaudit.stats import StageStats


@dataclass
class FilterResult:
    out: Path
    summary: dict
    counts: dict
    skipped: bool = False  # the job was already complete: nothing was done

    @property
    def exit_code(self) -> int:
        return self.summary["exit_code"]


def run_filter(
    policy: Policy,
    inputs: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    *,
    stages: Optional[list[str]] = None,
    workers: Optional[int] = None,
    engine: str = "local",
    engine_options: Optional[dict] = None,
    truth: Optional[str | os.PathLike] = None,
    progress: bool = True,
) -> FilterResult:
    """Run the policy's data stages (or only ``stages``) over ``inputs`` into ``out``."""
    started, t0 = now_iso(), time.perf_counter()
    specs = policy.select(stages)
    if truth is not None and not Path(truth).is_file():
        raise UsageError(f"{truth}: no such ground-truth file (--truth)")
    for s in specs:
        get_stage(s.name)(s.settings).preflight()
    files = expand_inputs(inputs)
    layout = JobLayout(out)
    input_info = _input_info(files, layout)
    report_inputs = [{k: i[k] for k in ("path", "sha256", "bytes")} for i in input_info]
    job = {
        "policy_sha256": policy.sha256,
        "stages": [[s.name, s.settings.model_dump(mode="json")] for s in specs],
        "inputs": [[i["path"], i["sha256"]] for i in input_info],
        "shard_size": policy.pipeline.shard_size,
        "gzip_output": policy.pipeline.gzip_output,
    }
    if _job_matches(layout, job) and layout.complete_marker.exists():
        summary = json.loads((layout.reports / "summary.json").read_text())
        counts = json.loads((layout.reports / "pipeline.json").read_text())["counts"]
        return FilterResult(layout.out, summary, counts, skipped=True)
    layout.prepare()
    write_json_atomic(layout.job_file, job)
    write_json_atomic(layout.state / INPUTS_CACHE, input_info)

    workers = workers or policy.pipeline.workers or os.cpu_count() or 1
    spec = ProcessorSpec(str(layout.out), [(s.name, s.settings.model_dump(mode="python")) for s in specs],
                         policy.pipeline.batch_size, policy.pipeline.samples, policy.pipeline.gzip_output)
    bar = tqdm(total=None, unit="doc", desc="filter", disable=not progress, mininterval=0.5, file=sys.stderr,
               dynamic_ncols=True)
    n_shards = [0]
    resumed = [0]

    def tasks() -> Iterator[ShardTask]:
        for index, records in _shards(read_corpus(files), policy.pipeline.shard_size):
            n_shards[0] = index + 1
            if layout.is_done(index):
                resumed[0] += 1
                bar.update(len(records))
                continue
            yield ShardTask(index, records)

    for result in make_engine(engine, workers, **(engine_options or {})).run(spec, tasks()):
        bar.update(result.records)
    bar.close()
    wall = time.perf_counter() - t0

    merged = _merge_shard_stats(layout, n_shards[0], [s.name for s in specs], policy.pipeline.samples)
    run_id = new_run_id()
    ctx = ReportContext(layout.out, layout.reports, Path(truth) if truth else None)
    for s in specs:
        _write_stage_report(s, merged[s.name], policy, report_inputs, run_id, started, wall, ctx)
    counts = _write_pipeline_report(merged, policy, specs, report_inputs, run_id, started, wall,
                                    {"shards": n_shards[0], "shards_resumed": resumed[0], "workers": workers,
                                     "engine": engine}, layout.reports)
    write_manifest(layout)
    summary = write_summary(layout.reports, run_id)
    render_html(layout.reports)
    layout.complete_marker.write_text(run_id)
    return FilterResult(layout.out, summary, counts)


INPUTS_CACHE = "inputs.json"


def _input_info(files: list[Path], layout: JobLayout) -> list[dict]:
    """Path, sha256, size and modification time of each input. A file whose size and time match what this
    job folder recorded is not read again, so resuming or re-running a finished job does not re-hash it."""
    cache_file = layout.state / INPUTS_CACHE
    cache = {c["path"]: c for c in json.loads(cache_file.read_text())} if cache_file.exists() else {}
    info = []
    for p in files:
        st = p.stat()
        known = cache.get(str(p))
        fresh = known and known["bytes"] == st.st_size and known["mtime_ns"] == st.st_mtime_ns
        info.append({"path": str(p), "sha256": known["sha256"] if fresh else sha256_file(p), "bytes": st.st_size,
                     "mtime_ns": st.st_mtime_ns})
    return info


def _job_matches(layout: JobLayout, job: dict) -> bool:
    if not layout.job_file.exists():
        if layout.out.exists() and any(layout.out.iterdir()):
            raise UsageError(f"{layout.out}: folder exists and is not an fmaudit job; choose an empty or new --out")
        return False
    previous = json.loads(layout.job_file.read_text())
    if previous != job:
        changed = [k for k in job if previous.get(k) != job[k]]
        raise UsageError(f"{layout.out} holds a different job (changed: {', '.join(changed)}); "
                         f"use a new --out, or delete the folder to start over")
    return True


def _shards(records, size: int):
    buf, index = [], 0
    for rec in records:
        buf.append(rec)
        if len(buf) == size:
            yield index, buf
            buf, index = [], index + 1
    if buf or index == 0:
        yield index, buf


def _merge_shard_stats(layout: JobLayout, n_shards: int, names: list[str], samples: int) -> dict[str, StageStats]:
    merged = {name: StageStats(max_samples=samples) for name in names + [PIPELINE]}
    for index in range(n_shards):
        shard = layout.load_shard_stats(index)
        for name, stats in merged.items():
            stats.merge(StageStats.from_json(shard[name]))
    return merged


def _stage_counts(stats: StageStats) -> dict:
    return {
        "in": stats.counters.get("in", 0),
        "kept": stats.counters.get("kept", 0),
        "dropped": stats.by_prefix("dropped:"),
        "held": stats.by_prefix("held:"),
        "quarantined": 0,
        "added": stats.counters.get("added", 0),
    }


def _write_stage_report(spec: StageSpec, stats: StageStats, policy: Policy, inputs, run_id, started, wall,
                        ctx: ReportContext) -> None:
    stage = get_stage(spec.name)(spec.settings)
    extra: StageReport = stage.report(stats, ctx)
    counts = _stage_counts(stats)
    n_in = counts["in"]
    n_dropped = sum(counts["dropped"].values())
    seconds = stats.moments["seconds"].total if "seconds" in stats.moments else 0.0
    metrics = {"drop_fraction": n_dropped / n_in if n_in else 0.0,
               "docs_per_s_per_worker": n_in / seconds if seconds else None, **extra.metrics}
    checks = list(extra.checks)
    if spec.settings.max_drop_fraction is not None:
        checks.insert(0, Check.evaluate("drop_fraction", metrics["drop_fraction"], spec.settings.max_drop_fraction,
                                        "max", "error", "fraction of documents this stage dropped"))
    details = {"histograms": {k: h.to_json() for k, h in stats.histograms.items()},
               "moments": {k: m.summary() for k, m in stats.moments.items()},
               "counters": stats.counters, **extra.details}
    write_report(ctx.reports_dir, make_report(
        spec.name, run_id, started, policy=policy, section=spec.section, inputs=inputs, counts=counts,
        metrics=metrics, checks=checks, samples=stats.samples, details=details, plots=extra.plots,
        timings={"wall_s": wall, "stage_cpu_s": seconds}))


def _write_pipeline_report(merged: dict[str, StageStats], policy: Policy, specs, inputs, run_id, started, wall,
                           info, reports_dir: Path) -> dict:
    c = merged[PIPELINE].counters
    read, quarantined = c.get("read", 0), c.get("quarantined", 0)
    kept, dropped, held, added = c.get("kept", 0), c.get("dropped", 0), c.get("held", 0), c.get("added", 0)
    by_stage = {f"{s.name}:{reason}": n for s in specs for reason, n in merged[s.name].by_prefix("dropped:").items()}
    held_by = {f"{s.name}:{reason}": n for s in specs for reason, n in merged[s.name].by_prefix("held:").items()}
    counts = {"in": read, "kept": kept, "dropped": by_stage, "held": held_by, "quarantined": quarantined,
              "added": added}
    checks = [
        Check.evaluate("accounting_identity", kept + dropped + held + quarantined, read, "equal", "error",
                       "documents read = kept + dropped + held + quarantined (added documents counted apart)"),
        Check.evaluate("added_accounting", c.get("kept_added", 0) + c.get("dropped_added", 0) + c.get("held_added", 0),
                       added, "equal", "error", "documents added = added kept + added dropped + added held"),
    ]
    metrics = {"read": read, "kept": kept, "dropped": dropped, "held": held, "quarantined": quarantined,
               "added": added, "kept_added": c.get("kept_added", 0), "dropped_added": c.get("dropped_added", 0),
               "docs_per_s": read / wall if wall else None, **info}
    details = {"quarantined_by_kind": merged[PIPELINE].by_prefix("quarantined:")}
    write_report(reports_dir, make_report(
        PIPELINE, run_id, started, policy=policy,
        section={"pipeline": policy.pipeline.model_dump(), "stages": [s.name for s in specs]},
        inputs=inputs, counts=counts, metrics=metrics, checks=checks, details=details, timings={"wall_s": wall}))
    return counts
