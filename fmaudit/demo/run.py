"""``fmaudit demo``: the whole pipeline that exists, run on the synthetic corpus.

The demo runs the registered steps (:data:`fmaudit.demo.STEPS`) in order. Each step takes the
:class:`DemoContext`, does its part, and appends the folders of reports it wrote to ``ctx.reports_dirs``.
At the end every check of every report is printed in one table.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from fmaudit.demo import demo_step, ordered_steps
from fmaudit.errors import UsageError

MARKER = ".fmaudit-demo"


@dataclass
class DemoContext:
    out: Path
    quick: bool
    policy_path: Path
    workers: Optional[int] = None
    seed: int = 0
    corpus_dir: Path = field(init=False)
    truth: Path = field(init=False)
    filter_dir: Path = field(init=False)
    reports_dirs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # lines printed before the checks table
    _pool: Any = field(default=None, init=False, repr=False)
    _jobs: dict = field(default_factory=dict, init=False, repr=False)
    _threads: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.corpus_dir = self.out / "corpus"
        self.truth = self.out / "truth.jsonl"
        self.filter_dir = self.out / "filtered"

    def start(self, name: str, func: Callable, *args) -> None:
        """Run ``func(*args)`` (a module-level function of picklable arguments) in a worker process while the
        next steps run: a training on one torch thread leaves the machine's other core to them. The result
        waits in :meth:`result`; the outputs are the same as when run in line (seeded, one thread)."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            import torch

            self._pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
            self._threads = torch.get_num_threads()
            torch.set_num_threads(1)  # the steps running beside a job take one thread: two spin on two busy cores
        self._jobs[name] = self._pool.submit(func, *args)

    def result(self, name: str):
        """What the job ``name`` returned (waiting for it; its exception is raised here); None if none ran."""
        job = self._jobs.pop(name, None)
        return None if job is None else job.result()

    def close(self) -> None:
        if self._pool is not None:
            import torch

            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            torch.set_num_threads(self._threads)

    @property
    def policy(self):
        from fmaudit.policy import load_policy

        return load_policy(self.policy_path)


@demo_step(order=10)
def corpus_step(ctx: DemoContext) -> None:
    from fmaudit.demo.corpus import generate_corpus

    docs = 300 if ctx.quick else 2000
    info = generate_corpus(ctx.out, docs=docs, seed=ctx.seed, task_rows=600 if ctx.quick else 1200)
    ctx.notes.append(f"corpus: {info['documents']} documents + {info['malformed']} malformed records -> {ctx.corpus_dir}")


@demo_step(order=20)
def filter_step(ctx: DemoContext) -> None:
    from fmaudit.pipeline.runner import run_filter

    result = run_filter(ctx.policy, [ctx.corpus_dir], ctx.filter_dir, workers=ctx.workers, truth=ctx.truth)
    c = result.counts
    ctx.notes.append(f"filter: read {c['in']}, kept {c['kept']}, dropped {sum(c['dropped'].values())}, "
                     f"held {sum(c.get('held', {}).values())}, quarantined {c['quarantined']}, added {c['added']} "
                     f"-> {ctx.filter_dir}")
    ctx.reports_dirs.append(ctx.filter_dir / "reports")


def run_demo(out: str | Path = "reports/demo", quick: bool = False, policy: Optional[str | Path] = None,
             workers: Optional[int] = None) -> int:
    """Run every demo step into ``out`` (replacing an earlier demo there); print the checks; return the exit code."""
    from fmaudit.reports.envelope import new_run_id, write_summary
    from fmaudit.reports.document import render_documents
    from fmaudit.reports.manifest import write_manifest
    from fmaudit.reports.render import render_html
    from fmaudit.reports.table import format_checks

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise UsageError(f"{out}: folder exists and was not made by `fmaudit demo`; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by fmaudit demo; deleted and remade by the next demo run\n")
    from fmaudit.policy import shipped_policy

    ctx = DemoContext(out, quick, Path(policy) if policy else shipped_policy("demo"), workers)
    t0 = time.perf_counter()
    try:
        for name, step in ordered_steps():
            step_t0 = time.perf_counter()
            step(ctx)
            print(f"[{time.perf_counter() - step_t0:6.1f}s] {name}", flush=True)
    finally:
        ctx.close()
    summary = write_summary(out, new_run_id(), sources=ctx.reports_dirs)
    page = render_html(out, sources=ctx.reports_dirs)
    documents = render_documents([out], out)
    render_documents([out], out, audience="public")
    write_manifest(out)
    checks = summary["checks"]
    print()
    for note in ctx.notes:
        print(note)
    print()
    print(format_checks(checks))
    failed = summary["failed"]
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f}s; checks: "
          f"{'PASSED' if not failed else 'FAILED: ' + ', '.join(failed)}; reports in "
          f"{', '.join(str(d) for d in ctx.reports_dirs)}; all checks in {out / 'summary.json'} and {page}")
    print(f"report: {documents['html']} (model card {documents['card']}; MANIFEST.json signs every file: "
          f"`fmaudit verify {out}`)")
    return summary["exit_code"]
