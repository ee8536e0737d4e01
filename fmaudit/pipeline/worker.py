"""Processing one shard: every stage in order, over batches, with the runner's own accounting.

A :class:`ShardProcessor` is built once per worker (so stages load their models once) and then
processes any number of shards. It checks that each stage accounts for every document it was given:
kept, dropped with a reason or held; a stage that loses a document is a bug and stops the job.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

from fmaudit.corpus import Document, Quarantined, Record
from fmaudit.pipeline.global_pass import commit_signatures, load_pending
from fmaudit.pipeline.layout import JobLayout
from fmaudit.pipeline.progress import Report, no_report, queue_report
from fmaudit.pipeline.tuning import fewer_collections, keep_freed_memory
from fmaudit.stages import get_stage
from fmaudit.stages.base import Stage
from fmaudit.stages.global_stage import GlobalStage
from fmaudit.stats import StageStats

PIPELINE = "pipeline"  # the runner's own statistics, beside the stages'


@dataclass
class ProcessorSpec:
    """All a worker needs to rebuild the stages and write shards (picklable, small)."""

    out: str
    stages: list[tuple[str, dict]]  # (stage name, settings as a dict)
    batch_size: int = 256
    samples: int = 3
    gzip_output: bool = False
    mode: str = "apply"  # "sign": the sign pass of global stages (fmaudit.pipeline.global_pass); "apply": the rest
    skip: int = 0  # stages already run by the sign pass (their results are the shard's pending work)
    quarantine_raw: str = "anonymized"  # pipeline.quarantine_raw: anonymized | raw | omit


@dataclass
class ShardTask:
    index: int
    records: list[Record]
    decisions: dict[str, dict] = field(default_factory=dict)  # global stage -> this shard's decisions


@dataclass
class ShardResult:
    index: int
    records: int
    stats: dict = field(default_factory=dict)


@dataclass
class ShardWork:
    """One shard in progress: output rows by folder, the runner's totals, the documents still going, the
    statistics of the stages run so far and the ids of documents stages added."""

    files: dict[str, list[dict]]
    totals: StageStats
    docs: list[Document]
    stage_stats: dict[str, dict] = field(default_factory=dict)
    added_ids: set[str] = field(default_factory=set)

    @classmethod
    def from_records(cls, records: list[Record], quarantine_raw: str = "anonymized") -> "ShardWork":
        docs = [rec for rec in records if type(rec) is not Quarantined]
        work = cls({"data": [], "dropped": [], "held": [], "quarantine": []}, StageStats(), docs)
        work.totals.add("read", len(records))
        if len(docs) < len(records):
            for rec in records:
                if type(rec) is Quarantined:
                    work.files["quarantine"].append(quarantine_row(rec, quarantine_raw))
                    work.totals.add("quarantined")
                    work.totals.add("quarantined:" + rec.kind)
        return work

    def to_json(self) -> dict:
        return {"files": self.files, "totals": self.totals.to_json(), "docs": [d.to_json() for d in self.docs],
                "stage_stats": self.stage_stats, "added_ids": sorted(self.added_ids)}

    @classmethod
    def from_json(cls, d: dict, max_samples: int) -> "ShardWork":
        return cls(d["files"], StageStats.from_json(d["totals"], max_samples),
                   [Document(x["id"], x["text"], x["meta"]) for x in d["docs"]], d["stage_stats"], set(d["added_ids"]))


def quarantine_row(rec: Quarantined, raw: str) -> dict:
    """The quarantine/ row of a malformed record, its raw text kept as ``pipeline.quarantine_raw`` says."""
    row = rec.to_json()
    if raw == "omit":
        del row["raw"]
    elif raw == "anonymized":
        from fmaudit.text.scrub import scrub_long

        row["raw"] = scrub_long(rec.raw)
    row["raw_form"] = raw
    return row


class ShardProcessor:
    """Runs the stages of ``spec`` (from ``spec.skip`` on) over shards; built once per worker."""

    def __init__(self, spec: ProcessorSpec, report: Report = no_report):
        self.spec = spec
        self.layout = JobLayout(spec.out)
        self.report = report  # (shard, fraction done) after every batch step, for the progress bar
        self._steps = (0, 1, 0)  # shard, batch steps of the shard, steps done
        self.stages: list[Stage] = []
        for name, settings in spec.stages[spec.skip:]:
            cls = get_stage(name)
            self.stages.append(cls(cls.Settings.model_validate(settings)))
        for stage in self.stages:
            stage.setup()

    def process(self, task: ShardTask) -> ShardResult:
        if self.spec.mode == "sign":
            return self._sign(task)
        return self._commit(self._run(task))

    def process_all(self, tasks: Iterable[ShardTask]) -> Iterator[ShardResult]:
        """Process ``tasks`` in order, committing each shard on a thread while the next one is read and run.

        A commit is mostly hashing and writing, which release the GIL, so it overlaps the next shard's work
        where a core is free. One commit at a time, in shard order, so the files, their hashes and the
        completion markers are those of :meth:`process`; a shard's result comes once its commit is done."""
        if self.spec.mode == "sign":
            yield from map(self.process, tasks)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="fmaudit-commit") as committer:
            committing: Optional[Future] = None
            for task in tasks:
                done = self._run(task)
                if committing is not None:
                    yield committing.result()
                committing = committer.submit(self._commit, done)
            if committing is not None:
                yield committing.result()

    def _run(self, task: ShardTask) -> tuple[ShardWork, ShardResult]:
        """The stages over one shard: its output rows and statistics, not yet committed."""
        # after a sign pass that ran the stages before the global ones, the shard continues from there
        pending = load_pending(self.layout.out, task.index) if self.spec.skip else None
        work = ShardWork.from_json(pending, self.spec.samples) if pending else \
            ShardWork.from_records(task.records, self.spec.quarantine_raw)
        self._start_steps(task.index, len(work.docs), len(self.stages))
        for stage in self.stages:
            if isinstance(stage, GlobalStage):
                stage.use_decisions(task.decisions.get(stage.name, {}))
        self._run_stages(self.stages, work)
        work.files["data"] = work.docs  # documents, written as their to_json() rows
        self._count_outcomes(work.totals, work.files, work.added_ids)
        work.stage_stats[PIPELINE] = work.totals.to_json()
        return work, ShardResult(task.index, len(task.records), work.stage_stats)

    def _commit(self, done: tuple[ShardWork, ShardResult]) -> ShardResult:
        work, result = done
        suffix = ".jsonl.gz" if self.spec.gzip_output else ".jsonl"
        self.layout.commit_shard(result.index, work.files, work.stage_stats, suffix)
        return result

    def _sign(self, task: ShardTask) -> ShardResult:
        """The sign pass: the stages before the global ones, then the global stages' signatures."""
        work = ShardWork.from_records(task.records, self.spec.quarantine_raw)
        first = next(i for i, s in enumerate(self.stages) if isinstance(s, GlobalStage))
        self._start_steps(task.index, len(work.docs), first + 1)
        self._run_stages(self.stages[:first], work)
        commit_signatures(self.layout.out, self.stages[first:], task.index, work.docs,
                          work.to_json() if first else None)
        return ShardResult(task.index, len(task.records))

    def _start_steps(self, index: int, docs: int, stages: int) -> None:
        """A shard of ``docs`` documents starts through ``stages`` stages: count its batch steps for progress
        (one step more for the commit, which the driver reports)."""
        batches = -(-docs // self.spec.batch_size) or 1
        self._steps = (index, stages * batches + 1, 0)

    def _step(self) -> None:
        index, total, done = self._steps
        self._steps = (index, total, done + 1)
        self.report(index, min(1.0, (done + 1) / total))

    def _run_stages(self, stages: list[Stage], work: ShardWork) -> None:
        for stage in stages:
            stats = StageStats(max_samples=self.spec.samples)
            work.docs = self._run_stage(stage, work.docs, stats, work.files, work.added_ids)
            work.stage_stats[stage.name] = stats.to_json()

    def _run_stage(self, stage: Stage, docs: list[Document], stats: StageStats, files: dict,
                   added_ids: set[str]) -> list[Document]:
        out: list[Document] = []
        size = self.spec.batch_size
        for start in range(0, len(docs), size):
            batch = docs[start:start + size]
            ids_in = [d.id for d in batch]  # before the stage runs: it may change the list it was given
            t0 = time.perf_counter()
            res = stage.process(batch, stats)
            stats.observe("seconds", time.perf_counter() - t0)
            _check_accounting(stage.name, ids_in, res)
            stats.add("in", len(batch))
            stats.add("kept", len(res.kept))
            stats.add("added", len(res.added))
            for doc, reason in res.dropped:
                stats.add("dropped:" + reason)
                files["dropped"].append({**doc.to_json(), "dropped": {"stage": stage.name, "reason": reason}})
            for doc, reason in res.held:
                stats.add("held:" + reason)
                files["held"].append({**doc.to_json(), "held": {"stage": stage.name, "reason": reason}})
            for name, rows in res.side.items():
                files.setdefault(f"{stage.name}_{name}", []).extend(rows)
            added_ids.update(d.id for d in res.added)
            out.extend(res.kept)
            out.extend(res.added)
            self._step()
        return out

    @staticmethod
    def _count_outcomes(totals: StageStats, files: dict, added_ids: set[str]) -> None:
        for folder, key in (("data", "kept"), ("dropped", "dropped"), ("held", "held")):
            rows = files[folder]  # data/: documents; dropped/ and held/: rows
            n_added = sum(1 for row in rows if (row.id if type(row) is Document else row["id"]) in added_ids) \
                if added_ids else 0
            totals.add(key, len(rows) - n_added)
            totals.add(key + "_added", n_added)
        totals.add("added", len(added_ids))


def _check_accounting(stage: str, seen_in: list[str], res) -> None:
    """RuntimeError unless the ids kept, dropped and held are the ids given (``seen_in``), each once, and no
    added document reuses one of them."""
    seen_out = [d.id for d in res.kept]
    if res.dropped or res.held:
        seen_out += [d.id for d, _ in res.dropped] + [d.id for d, _ in res.held]
    if seen_out != seen_in and sorted(seen_in) != sorted(seen_out):  # most stages keep the order: no sort
        lost = set(seen_in) - set(seen_out)
        extra = set(seen_out) - set(seen_in)
        raise RuntimeError(f"stage {stage!r} broke the document accounting: lost {sorted(lost)[:5]}, "
                           f"unexpected {sorted(extra)[:5]} (added documents belong in StageResult.added)")
    clash = {d.id for d in res.added} & set(seen_in) if res.added else None
    if clash:
        raise RuntimeError(f"stage {stage!r} added documents whose ids already exist: {sorted(clash)[:5]}")


_PROCESSOR: Optional[ShardProcessor] = None
_SETUP_ERROR: Optional[BaseException] = None


def init_worker(spec: ProcessorSpec, progress_queue=None) -> None:
    """Worker-process initializer: build the stages once. An error here (a missing model, a bad key) is kept
    and raised by the first task, so it reaches the driver as itself instead of as a broken process pool.
    ``progress_queue``: where the worker reports its batch steps for the driver's progress bar."""
    global _PROCESSOR, _SETUP_ERROR
    _die_with_parent()
    try:
        _PROCESSOR = ShardProcessor(spec, queue_report(progress_queue) if progress_queue is not None else no_report)
    except Exception as e:  # re-raised, with its type, in run_in_worker
        _SETUP_ERROR = e
    keep_freed_memory()  # for the life of this worker process
    fewer_collections().__enter__()


def run_in_worker(task: ShardTask) -> ShardResult:
    if _SETUP_ERROR is not None:
        raise _SETUP_ERROR
    assert _PROCESSOR is not None, "init_worker was not called"
    return _PROCESSOR.process(task)


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the driver dies (no orphans after kill -9)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
