"""The data-job driver behind ``fmaudit filter``.

It reads the corpus once, in order, cutting it into shards of ``pipeline.shard_size`` records; skips
shards already committed; hands the rest to an engine; then merges every shard's statistics (in shard
order, from disk, so resumed runs report the whole job) into one report per stage, the pipeline's own
report with the accounting identity, and ``reports/summary.json``.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from fmaudit.corpus import check_read_hashes, expand_inputs, read_corpus_batches
from fmaudit.errors import UsageError
from fmaudit.pipeline.engines import make_engine
from fmaudit.pipeline.global_pass import (decide_all, global_block, remove_global_scratch, shard_decisions,
                                         signed_marker)
from fmaudit.pipeline.job_inputs import input_info, record_inputs, settle_hashes
from fmaudit.pipeline.layout import JobLayout, RunClock, write_manifest
from fmaudit.pipeline.progress import PassProgress
from fmaudit.reports.manifest import write_manifest as sign_run
from fmaudit.pipeline.tuning import fewer_collections, keep_freed_memory
from fmaudit.pipeline.worker import PIPELINE, ProcessorSpec, ShardTask
from fmaudit.policy import Policy, StageSpec
from fmaudit.reports.render import render_html
from fmaudit.reports.environment import prefetch as prefetch_environment
from fmaudit.reports.envelope import make_report, new_run_id, now_iso, write_json_atomic, write_report, write_summary
from fmaudit.stages import get_stage
from fmaudit.reports.content import Check, ReportContext, StageReport
from fmaudit.stats import StageStats


log = logging.getLogger("fmaudit.pipeline")


@dataclass
class FilterResult:
    out: Path
    summary: dict
    counts: dict
    skipped: bool = False  # the job was already complete: nothing was done

    @property
    def exit_code(self) -> int:
        return self.summary["exit_code"]


@dataclass
class FilterJob:
    """One ``fmaudit filter`` job: what it runs, over which inputs, into which folder, and how."""

    policy: Policy
    specs: list[StageSpec]
    files: list[Path]
    layout: JobLayout
    input_info: list[dict]
    workers: int
    engine: str = "local"
    engine_options: dict = field(default_factory=dict)
    truth: Optional[Path] = None
    progress: bool = True
    skipped_inputs: list[dict] = field(default_factory=list)  # side files below input folders, not read
    progress_interval: float = 0.5  # least seconds between two redraws of the progress bar
    started: str = field(default_factory=now_iso)
    t0: float = field(default_factory=time.perf_counter)
    decide_s: Optional[float] = None  # wall time of the global stages' decide step (this run), if any
    clock: Optional[RunClock] = None  # wall time of this run and of earlier runs of the job

    @property
    def identity(self) -> dict:
        """What makes two runs the same job (kept in ``.fmaudit/job.json``)."""
        return {
            "policy_sha256": self.policy.sha256,
            "stages": [[s.name, s.settings.model_dump(mode="json")] for s in self.specs],
            "inputs": [[i["path"], i["sha256"]] for i in self.input_info],
            "shard_size": self.policy.pipeline.shard_size,
            "gzip_output": self.policy.pipeline.gzip_output,
        }

    @property
    def report_inputs(self) -> list[dict]:
        return [{k: i[k] for k in ("path", "sha256", "bytes")} for i in self.input_info]

    @property
    def global_stages(self) -> list[str]:
        return global_block([s.name for s in self.specs], self.policy.path)[1]

    def processor_spec(self, mode: str = "apply") -> ProcessorSpec:
        """What workers need. The sign pass runs the stages up to the global ones (and signs); the apply pass
        then starts from the global stages (``skip``), so no stage runs twice on a shard."""
        p = self.policy.pipeline
        first, globals_ = global_block([s.name for s in self.specs], self.policy.path)
        stages = [(s.name, s.settings.model_dump(mode="python")) for s in self.specs]
        if mode == "sign":
            stages = stages[:first + len(globals_)]
        skip = first if mode == "apply" and globals_ else 0
        return ProcessorSpec(str(self.layout.out), stages, p.batch_size, p.samples, p.gzip_output, mode=mode,
                             skip=skip, quarantine_raw=p.quarantine_raw)


@dataclass
class PassState:
    """Progress of one pass over the corpus's shards."""

    shards: int = 0  # shards in the corpus (known once the pass has read it all)
    resumed: int = 0  # shards already committed by an earlier run, skipped
    processed: int = 0  # records of the shards this run processed


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
    progress_interval: float = 0.5,
) -> FilterResult:
    """Run the policy's data stages (or only ``stages``) over ``inputs`` into ``out``.

    ``progress``: a bar on stderr (input bytes processed of the total, with an ETA, moving within shards),
    redrawn at most every ``progress_interval`` seconds.

    Jobs with global stages (deduplication) make three passes, each resumable: sign every shard, decide
    once over the whole corpus, then the ordinary pass that applies the decisions with the other stages."""
    job = _prepare(policy, inputs, out, stages=stages, workers=workers, engine=engine,
                   engine_options=engine_options, truth=truth, progress=progress)
    job.progress_interval = progress_interval
    layout = job.layout
    keep_freed_memory()
    with layout.locked(), fewer_collections():  # one job at a time in a folder; the second exits 2 naming the holder
        if _job_matches(layout, job.identity) and layout.complete_marker.exists():
            summary = json.loads((layout.reports / "summary.json").read_text())
            counts = json.loads((layout.reports / "pipeline.json").read_text())["counts"]
            return FilterResult(layout.out, summary, counts, skipped=True)
        layout.prepare()
        prefetch_environment()  # the reports' facts about this machine, gathered while the job works
        job.clock = RunClock(layout, job.t0)
        write_json_atomic(layout.job_file, job.identity)
        record_inputs(layout.state, job.input_info)

        globals_ = job.global_stages
        if globals_:
            signed = _run_pass(job, "sign", lambda i: signed_marker(layout.out, i).exists())
            t_decide = time.perf_counter()
            decide_all(layout.out, [get_stage(s.name)(s.settings) for s in job.specs if s.name in globals_],
                       signed.shards)
            job.decide_s = time.perf_counter() - t_decide
        state = _run_pass(job, "apply", layout.is_done, globals_)
        wall = time.perf_counter() - job.t0
        return _finish(job, state, wall)


def _prepare(policy: Policy, inputs, out, *, stages, workers, engine, engine_options, truth, progress) -> FilterJob:
    """Check everything that can be checked before reading a document, and describe the job."""
    specs = policy.select(stages)
    if truth is not None and not Path(truth).is_file():
        raise UsageError(f"{truth}: no such ground-truth file (--truth)")
    for s in specs:
        get_stage(s.name)(s.settings).preflight()
    global_block([s.name for s in specs], policy.path)
    skipped: list[dict] = []
    files = expand_inputs(inputs, exclude=[out], skipped=skipped)  # an --out inside an input folder is not an input
    layout = JobLayout(out)
    info = input_info(files, layout.state, new_job=not layout.job_file.exists())
    return FilterJob(policy, specs, files, layout, info,
                     workers or policy.pipeline.workers or os.cpu_count() or 1, engine, dict(engine_options or {}),
                     Path(truth) if truth else None, progress, skipped)


def _run_pass(job: FilterJob, mode: str, is_done: Callable[[int], bool], globals_: list[str] = ()) -> PassState:
    """Read the corpus and run every shard not yet committed for ``mode`` on the engine."""
    state = PassState()
    progress = PassProgress(sum(i["bytes"] for i in job.input_info), "sign" if mode == "sign" else "filter",
                            enabled=job.progress, interval=job.progress_interval)
    read_hashes: dict[str, Optional[str]] = {}

    def tasks() -> Iterator[ShardTask]:
        batches = read_corpus_batches(job.files, job.policy.pipeline.max_chars, read_hashes, progress.position)
        for index, records in _shards(batches, job.policy.pipeline.shard_size):
            state.shards = index + 1
            progress.cut(index)
            if is_done(index):
                state.resumed += 1
                progress.committed(index, len(records))
                continue
            decisions = shard_decisions(job.layout.out, list(globals_), index) if globals_ else {}
            yield ShardTask(index, records, decisions)

    log.info("%s pass: %d input files (%.1f MB), stages %s, %d workers on the %s engine, into %s", mode,
             len(job.files), sum(i["bytes"] for i in job.input_info) / 1e6, ", ".join(s.name for s in job.specs),
             job.workers, job.engine, job.layout.out)
    t0 = time.perf_counter()
    engine = make_engine(job.engine, job.workers, **job.engine_options)
    # plug-in engines written before progress reports take (spec, tasks) only: their bar moves per shard
    reports = job.progress and "report" in inspect.signature(engine.run).parameters
    options = {"report": progress.report} if reports else {}
    for result in engine.run(job.processor_spec(mode), tasks(), **options):
        progress.committed(result.index, result.records)
        state.processed += result.records
        if job.clock is not None:
            job.clock.tick(time.perf_counter())
        log.info("shard %05d committed: %d records (%.1f s into the pass)", result.index, result.records,
                 time.perf_counter() - t0)
    if state.resumed:
        log.info("%d shards were already committed by an earlier run (resumed)", state.resumed)
    progress.close()
    if settle_hashes(job.input_info, read_hashes):  # a new job's inputs, hashed as they were read
        write_json_atomic(job.layout.job_file, job.identity)
        record_inputs(job.layout.state, job.input_info)
    check_read_hashes({i["path"]: i["sha256"] for i in job.input_info}, read_hashes)
    return state


def _finish(job: FilterJob, state: PassState, wall: float) -> FilterResult:
    """Merge the shards' statistics, write every report, the manifest and the summary; mark the job complete."""
    layout, specs, policy = job.layout, job.specs, job.policy
    merged = _merge_shard_stats(layout, state.shards, [s.name for s in specs], policy.pipeline.samples)
    run_id = new_run_id()
    ctx = ReportContext(layout.out, layout.reports, job.truth)
    timings = job.clock.timings(time.perf_counter()) if job.clock is not None else {"wall_s": wall}
    for s in specs:
        _write_stage_report(s, merged[s.name], policy, job.report_inputs, run_id, job.started, timings, ctx)
    counts = _write_pipeline_report(merged, policy, specs, job.report_inputs, run_id, job.started, timings,
                                    {"shards": state.shards, "shards_resumed": state.resumed, "workers": job.workers,
                                     "engine": job.engine, "decide_s": job.decide_s,
                                     "docs_per_s_this_run": state.processed / wall if wall else None},
                                    layout.reports, job.skipped_inputs)
    write_dataset_card(layout.out, policy)
    data_manifest = write_manifest(layout, state.shards)
    summary = write_summary(layout.reports, run_id)
    render_html(layout.reports)
    layout.complete_marker.write_text(run_id)
    remove_global_scratch(layout.out, job.global_stages)  # signatures and pending shards: done with
    sign_run(layout.out, hashed={f["path"]: f for f in data_manifest["files"]})  # output files hashed once
    return FilterResult(layout.out, summary, counts)


def write_dataset_card(out: Path, policy: Policy) -> None:
    """``OUT/README.md``, a Hugging Face dataset card whose ``configs:`` make ``datasets.load_dataset(OUT)`` load
    ``data/`` as the train split (and nothing else of the folder: dropped/, quarantine/, side outputs)."""
    suffix = "jsonl.gz" if policy.pipeline.gzip_output else "jsonl"
    tmp = out / "README.md.tmp"
    tmp.write_text(f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*.{suffix}
---
# {policy.name}: filtered corpus

Written by `fmaudit filter` with the policy `{policy.name}` (sha256 `{policy.sha256}`). `data/` holds the kept
documents (`id`, `text`, `meta`); the checks, counts and samples of every stage are in `reports/summary.html`
and `reports/*.json`. `dropped/`, `held/`, `quarantine/` and side outputs are not part of the dataset.
""", encoding="utf-8")
    os.replace(tmp, out / "README.md")


def _job_matches(layout: JobLayout, job: dict) -> bool:
    if not layout.job_file.exists():
        if layout.out.exists() and any(p.name != layout.state.name for p in layout.out.iterdir()):
            raise UsageError(f"{layout.out}: folder exists and is not an fmaudit job; choose an empty or new --out")
        return False
    previous = json.loads(layout.job_file.read_text())
    if previous != job:
        changed = [k for k in job if previous.get(k) != job[k]]
        raise UsageError(f"{layout.out} holds a different job (changed: {', '.join(changed)}); "
                         f"use a new --out, or delete the folder to start over")
    return True


def _shards(batches: Iterable[list], size: int):
    """``(index, records)`` of each run of ``size`` records of ``batches`` (the last may be shorter; one empty
    shard for an empty corpus)."""
    buf: list = []
    index = 0
    for batch in batches:
        buf.extend(batch)
        while len(buf) >= size:
            yield index, buf[:size]
            del buf[:size]
            index += 1
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


def _write_stage_report(spec: StageSpec, stats: StageStats, policy: Policy, inputs, run_id, started, timings: dict,
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
        timings={**timings, "stage_cpu_s": seconds}))


def _write_pipeline_report(merged: dict[str, StageStats], policy: Policy, specs, inputs, run_id, started,
                           timings: dict, info, reports_dir: Path, skipped_inputs: list[dict]) -> dict:
    """``reports/pipeline.json``: the accounting identity; ``timings`` has the job's wall time over all its runs
    (``wall_s``) and, for a resumed job, the last run's apart (``resumed_wall_s``)."""
    wall = timings["wall_s"]
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
    limit = policy.pipeline.max_quarantine_fraction
    if limit is not None:
        checks.append(Check.evaluate(
            "quarantine_fraction", quarantined / read if read else 0.0, limit, "max", "error",
            "share of records read that were malformed (quarantined); a high share usually means an input that "
            "is not the corpus (pipeline.max_quarantine_fraction)"))
    metrics = {"read": read, "kept": kept, "dropped": dropped, "held": held, "quarantined": quarantined,
               "added": added, "kept_added": c.get("kept_added", 0), "dropped_added": c.get("dropped_added", 0),
               "docs_per_s": read / wall if wall else None, **info}
    details = {"quarantined_by_kind": merged[PIPELINE].by_prefix("quarantined:"), "skipped_inputs": skipped_inputs,
               "quarantine_raw": policy.pipeline.quarantine_raw}
    write_report(reports_dir, make_report(
        PIPELINE, run_id, started, policy=policy,
        section={"pipeline": policy.pipeline.model_dump(), "stages": [s.name for s in specs]},
        inputs=inputs, counts=counts, metrics=metrics, checks=checks, details=details, timings=timings))
    return counts
