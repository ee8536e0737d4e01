"""``fmaudit audit RUN --engine ray``: the checkpoints of a training run audited as Ray tasks.

Each task loads one checkpoint and runs every audit on it, writing ``OUT/step-N/`` exactly as the local
engine does (the audits are deterministic: seeded sampling and bootstrap), so the reports and items are the
same; the driver then builds the trend from the reports on disk. ``OUT`` must be on storage every node sees.
A task asks for one CPU, or one GPU when ``--device`` names CUDA.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from fmaudit.errors import UsageError
from fmaudit.registry import check_requires


class _NeedsRay:
    name = "--engine ray"
    requires = {"ray": "ray"}


def audit_steps_on_ray(audit_one: Callable, steps: list[Path], out: Path, options) -> None:
    """Run ``audit_one(step_dir, out_dir)`` for every checkpoint as a Ray task; returns when all are written."""
    if options.device == "auto":
        raise UsageError("--device auto spreads one checkpoint over the GPUs; with --engine ray give cuda")
    check_requires(_NeedsRay)
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        if options.address and options.address.startswith("ray://"):
            ray.init(address=options.address)
        elif options.address:
            ray.init(address=options.address, **quiet)
        else:  # a private instance, never an unrelated cluster found through /tmp/ray
            ray.init(address="local", include_dashboard=False, **quiet)
    try:
        gpu = str(options.device or "").startswith("cuda")
        task = ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0)(audit_one)
        pending = [task.remote(s, out / s.name) for s in steps]
        try:
            ray.get(pending)
        except ray.exceptions.RayTaskError as e:  # re-raise the task's own error (InputError: exit 2)
            raise e.as_instanceof_cause() from None
    finally:
        if started_here:
            ray.shutdown()
