"""The Ray engine: the same shards and stages as the local engine, on Ray actors (``--engine ray``).

Each of ``workers`` actors holds one :class:`ShardProcessor`, so stages load their models once per
actor, and commits the shards it processes itself (the output folder must therefore be on storage
every node sees at the same path). The driver reads the corpus and keeps at most
``in_flight_per_worker`` shards queued per actor. Files, statistics and completion markers are written
by the same code as the local engine's, so outputs are byte-identical and resuming works the same.

An actor asks Ray for the largest :class:`~fmaudit.stages.base.Resources` among the job's stages
(CPUs, memory and, where the cluster has GPUs, the GPUs a stage declares), so Ray places a GPU stage
on GPU workers; without GPUs in the cluster, GPU stages run on CPU, as with the local engine.

Stage classes travel to the actors with the job: stages defined in the driver's script (``__main__``)
are shipped by value; stages from other modules need those modules importable on the workers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
from typing import Iterable, Iterator, Optional

from fmaudit.errors import UsageError
from fmaudit.pipeline.engines.base import Engine
from fmaudit.pipeline.worker import ProcessorSpec, ShardResult, ShardTask
from fmaudit.stages import get_stage
from fmaudit.stages.base import Resources

GIB = 1024 ** 3


class ShardActor:
    """Body of the Ray actor: registers the shipped stage classes, then builds one ShardProcessor."""

    def __init__(self, spec: ProcessorSpec, stage_classes: list):
        from fmaudit.pipeline.worker import ShardProcessor
        from fmaudit.stages import register

        self.error: Optional[BaseException] = None
        try:
            for cls in stage_classes:
                register(cls)
            self.processor = ShardProcessor(spec)
        except Exception as e:  # re-raised by ready(), so the driver sees the stage's own error type
            self.error = e

    def ready(self) -> None:
        if self.error is not None:
            raise self.error

    def process(self, task: ShardTask) -> ShardResult:
        self.ready()  # an actor restarted by Ray sets up again, and may fail to
        return self.processor.process(task)


def job_resources(spec: ProcessorSpec) -> Resources:
    """The resources one worker needs: the largest request among the job's stages, field by field."""
    requests = [get_stage(name).resources for name, _ in spec.stages] or [Resources()]
    return Resources(cpus=max(r.cpus for r in requests), gpus=max(r.gpus for r in requests),
                     memory_gb=max(r.memory_gb for r in requests))


class RayEngine(Engine):
    name = "ray"

    def __init__(self, workers: int, address: Optional[str] = None, in_flight_per_worker: int = 2,
                 max_restarts: int = 3):
        super().__init__(workers)
        self.address = address
        self.in_flight_per_worker = max(1, in_flight_per_worker)
        self.max_restarts = max_restarts

    def run(self, spec: ProcessorSpec, tasks: Iterable[ShardTask], report=None) -> Iterator[ShardResult]:
        """As the base class says; progress is reported per shard, by the driver, as results come back."""
        ray = _import_ray()
        spec = dataclasses.replace(spec, out=os.path.abspath(spec.out))  # workers may start elsewhere
        need = job_resources(spec)
        started_here = not ray.is_initialized()
        if started_here:
            self._init(ray, need)
        actors = []
        try:
            actors = self._start_actors(ray, spec, need)
            yield from self._dispatch(ray, actors, tasks)
        finally:
            for actor in actors:  # free the cluster now; after an error, stop the shards still queued
                ray.kill(actor)
            if started_here:
                ray.shutdown()

    def _init(self, ray, need: Resources) -> None:
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        if self.address and self.address.startswith("ray://"):
            ray.init(address=self.address)  # Ray Client: the cluster's own settings apply
        elif self.address:
            ray.init(address=self.address, **quiet)
        else:
            # "local": a private instance, never an unrelated cluster found through /tmp/ray.
            ray.init(address="local", num_cpus=max(1, math.ceil(self.workers * need.cpus)), include_dashboard=False,
                     **quiet)

    def _start_actors(self, ray, spec: ProcessorSpec, need: Resources) -> list:
        options = actor_options(need, ray.cluster_resources(), local=not self.address)
        options.update(max_restarts=self.max_restarts, max_task_retries=self.max_restarts)
        remote_cls = ray.remote(ShardActor).options(**options)
        stage_classes = [get_stage(name) for name, _ in spec.stages]
        return [remote_cls.remote(spec, stage_classes) for _ in range(self.workers)]

    def _dispatch(self, ray, actors: list, tasks: Iterable[ShardTask]) -> Iterator[ShardResult]:
        """Give each shard to the ready actor with the fewest queued shards; yield results as they finish.

        Only actors that Ray has placed and whose stages are set up get shards, so an actor that waits for
        resources (a GPU node, say) holds no work back.
        """
        starting = {actors[i].ready.remote(): i for i in range(len(actors))}
        queued: dict[int, int] = {}  # ready actor -> shards queued on it
        owner: dict = {}  # result ref -> actor
        tasks = iter(tasks)
        task = next(tasks, None)
        while task is not None or owner:
            free = [i for i, n in queued.items() if n < self.in_flight_per_worker]
            if task is not None and free:
                i = min(free, key=queued.__getitem__)
                owner[actors[i].process.remote(task)] = i
                queued[i] += 1
                task = next(tasks, None)
                continue
            [ref], _ = ray.wait(list(owner) + list(starting), num_returns=1)
            if ref in starting:
                ray.get(ref)  # a stage's set-up error surfaces here, as its own type
                queued[starting.pop(ref)] = 0
            else:
                queued[owner.pop(ref)] -= 1
                yield ray.get(ref)  # so does a stage's processing error


def actor_options(need: Resources, cluster: dict, local: bool) -> dict:
    """Ray options for one actor; a request no node of the cluster could ever meet is an error up front."""
    options = {"num_cpus": need.cpus, "memory": int(need.memory_gb * GIB)}
    if need.gpus:
        if cluster.get("GPU", 0) >= need.gpus:
            options["num_gpus"] = need.gpus
        else:
            print(f"fmaudit: the Ray cluster has {cluster.get('GPU', 0):g} GPU; the stages that declare "
                  f"{need.gpus:g} GPU per worker run on CPU", file=sys.stderr)
    short = [f"{what} {want:g} (cluster total {cluster.get(key, 0) / scale:g})"
             for what, key, want, scale in (("CPUs", "CPU", need.cpus, 1), ("memory GiB", "memory", need.memory_gb, GIB))
             if want > cluster.get(key, 0) / scale]
    if short and local:
        raise UsageError("a worker needs more than the local Ray instance has: " + ", ".join(short))
    if short:
        print("fmaudit: waiting for the Ray cluster to grow: a worker needs " + ", ".join(short), file=sys.stderr)
    return options


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'fmaudit[ray]'") from None
    return ray
