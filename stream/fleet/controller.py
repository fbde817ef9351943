"""Run a fleet: connect to Ray, start the workers, place the streams, run them, gather the
statistics.

Example:
    >>> report = Fleet(load_fleet("cameras.yaml"), address="local", cpus=2).run()
    >>> report["streams"][0]["frames_out"]
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from detstream.engines.errors import UserInputError
from detstream.stream.fleet.config import FleetConfig, StreamSpec, WorkerSpec
from detstream.stream.fleet.placement import Demand, Placement, Slot, place
from detstream.stream.fleet.worker import FleetWorker
from detstream.stream.session import RunConfig

Log = Callable[[str], None]
#: Seconds a worker may take to start before the run gives up on the cluster.
START_TIMEOUT = 120.0


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserInputError("Ray is not installed; install detstream[fleet] "
                             "(pip install 'detstream[fleet]')") from None
    return ray


def connect(address: str, cpus: int | None = None) -> bool:
    """Start or join Ray; True when this call started it (and should shut it down).

    Args:
        address: ``local`` (a private instance on this machine, loopback only), ``auto``
            (the cluster this machine belongs to) or ``ray://HOST:PORT``.
        cpus: CPUs a ``local`` instance offers (default: this machine's).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address == "local":
        ray.init(num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False, **options)
    elif address == "auto" or address.startswith("ray://"):
        if cpus is not None:
            raise UserInputError("--cpus sets the size of a local instance; an existing "
                                 "cluster has its own (drop --cpus)")
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError) as exc:
            raise UserInputError(f"--address {address}: cannot join the Ray cluster "
                                 f"({exc}); check the address, or use --address local") from None
    else:
        raise UserInputError(f"--address {address!r}: use local, auto or ray://HOST:PORT")
    return True


def cluster_workers(resources: dict[str, float]) -> tuple[WorkerSpec, ...]:
    """Workers for a YAML that lists none: one per GPU (1 CPU + 1 GPU each), else one per
    CPU."""
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return tuple(WorkerSpec(name=f"gpu-{i}", cpus=1, gpus=1) for i in range(gpus))
    cpus = max(1, int(resources.get("CPU", 1)))
    return tuple(WorkerSpec(name=f"cpu-{i}", cpus=1) for i in range(cpus))


def check_resources(workers: tuple[WorkerSpec, ...], resources: dict[str, float]) -> None:
    """Raise when the workers ask for more CPUs or GPUs than the cluster has (Ray would
    otherwise wait for them forever)."""
    for kind, key in (("cpus", "CPU"), ("gpus", "GPU")):
        wanted = sum(getattr(w, kind) for w in workers)
        have = resources.get(key, 0.0)
        if wanted > have + 1e-9:
            raise UserInputError(f"the workers ask for {wanted:g} {key}s and the cluster has "
                                 f"{have:g}; lower their {kind} or list fewer workers")


def run_config(stream: StreamSpec) -> RunConfig:
    """The single-stream run settings of ``stream`` (what ``detstream run`` would use)."""
    return RunConfig(source=stream.uri, model=stream.model, imgsz=stream.imgsz,
                     backend=stream.backend, conf=stream.conf, tracker=stream.tracker,
                     output=stream.outputs.video, save_json=stream.outputs.json,
                     save_mot=stream.outputs.mot)


def _unrun(spec: StreamSpec, error: str | None) -> dict:
    """The statistics of a stream that never ran (not placed, or its worker failed)."""
    return {"uri": spec.uri, "frames_in": 0, "frames_out": 0, "frames_dropped": 0,
            "frames_skipped": 0, "fps": 0.0, "latency_ms": None, "source": None,
            "scores": None, "error": error}


@dataclass
class _Member:
    """A started worker: its spec and its actor handle."""

    spec: WorkerSpec
    actor: Any
    capacity: dict[str, float]
    streams: list[StreamSpec]
    error: str | None = None
    report: dict | None = None


class Fleet:
    """A fleet run over one Ray cluster.

    Args:
        config: the parsed cameras YAML.
        address: ``local``, ``auto`` or ``ray://HOST:PORT`` (see :func:`connect`).
        cpus: CPUs of a ``local`` instance.
        log: where progress lines go.
        collect_ms: each worker's longest wait for a batch to fill.
        poll_s: seconds between two looks at the workers.
    """

    def __init__(self, config: FleetConfig, address: str = "local", cpus: int | None = None,
                 log: Log | None = None, collect_ms: float = 10.0, poll_s: float = 0.5) -> None:
        self.config = config
        self.address = address
        self.cpus = cpus
        self.log = log or (lambda message: None)
        self.collect_ms = collect_ms
        self.poll_s = poll_s
        self.placement: Placement | None = None
        self.members: list[_Member] = []

    # ------------------------------------------------------------------ phases
    def _start_workers(self, ray: Any) -> None:
        resources = ray.cluster_resources()
        specs = self.config.workers or cluster_workers(resources)
        check_resources(specs, resources)
        remote = ray.remote(FleetWorker)
        for spec in specs:
            actor = remote.options(num_cpus=spec.cpus, num_gpus=spec.gpus,
                                   max_restarts=0).remote(spec.name, max(1, int(spec.cpus)))
            self.members.append(_Member(spec, actor, {}, []))
        try:
            ray.get([m.actor.ready.remote() for m in self.members], timeout=START_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            raise UserInputError(f"the workers did not start within {START_TIMEOUT:g} s; check "
                                 "that the cluster has the resources they ask for") from None

    def _measure(self, ray: Any) -> None:
        """Each worker's capacity per model: declared, or measured on the worker."""
        models = {s.model_key: s for s in self.config.streams}
        pending = []
        for member in self.members:
            for key, stream in models.items():
                if member.spec.capacity_fps is not None:
                    member.capacity[key] = member.spec.capacity_fps
                else:
                    pending.append((member, key, member.actor.measure.remote(
                        run_config(stream))))
        for member, key, ref in pending:
            member.capacity[key] = round(float(ray.get(ref)), 2)
            self.log(f"{member.spec.name}: measured {member.capacity[key]:.1f} frames/s "
                     f"with {key}")

    def _place(self) -> Placement:
        demands = [Demand(s.name, s.fps, s.model_key, s.gpu, s.priority)
                   for s in self.config.streams]
        slots = [Slot(m.spec.name, m.capacity, m.spec.gpus) for m in self.members]
        placement = place(demands, slots)
        by_name = {s.name: s for s in self.config.streams}
        for member in self.members:
            member.streams = [by_name[n] for n in placement.assigned[member.spec.name]]
        for name, reason in placement.shortage.items():
            self.log(f"stream {name} not placed: {reason}")
        return placement

    def _start_streams(self, ray: Any) -> None:
        starts = []
        for member in self.members:
            if not member.streams:
                continue
            shared = run_config(member.streams[0])
            configs = [run_config(s) for s in member.streams]
            self.log(f"{member.spec.name}: {', '.join(s.name for s in member.streams)}")
            starts.append((member, member.actor.start.remote(shared, configs,
                                                             self.collect_ms)))
        for member, ref in starts:
            self._call(ray, member, ref)

    def _call(self, ray: Any, member: _Member, ref: Any) -> Any:
        """``ray.get(ref)``; a dead worker or a failing call marks ``member`` failed."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            member.error = f"worker {member.spec.name} died ({type(exc).__name__})"
        except ray.exceptions.RayTaskError as exc:
            member.error = f"worker {member.spec.name} failed: {exc.cause or exc}"
        return None

    def _wait(self, ray: Any, stop: threading.Event | None) -> bool:
        """Poll the workers until every stream has ended; True when interrupted."""
        active = [m for m in self.members if m.streams and m.error is None]
        interrupted = False
        while active:
            if stop is not None and stop.is_set() and not interrupted:
                interrupted = True
                self.log("stopping: the workers finish the frames in flight")
                for member in active:
                    self._call(ray, member, member.actor.drain.remote("interrupted"))
            polls = [(m, m.actor.poll.remote()) for m in active]
            still = []
            for member, ref in polls:
                answer = self._call(ray, member, ref)
                if answer is not None and not answer["done"]:
                    still.append(member)
            active = still
            if active:
                time.sleep(self.poll_s)
        return interrupted

    def _stop(self, ray: Any) -> None:
        stops = [(m, m.actor.stop.remote()) for m in self.members
                 if m.streams and m.error is None]
        for member, ref in stops:
            member.report = self._call(ray, member, ref)
        for member in self.members:
            ray.kill(member.actor)

    # ------------------------------------------------------------------ running
    def run(self, stop: threading.Event | None = None) -> dict:
        """Run every placed stream to its end (or until ``stop`` is set); returns the
        report (:meth:`report`). Ray is shut down afterwards if this run started it."""
        ray = import_ray()
        owned = connect(self.address, self.cpus)
        began = time.perf_counter()
        interrupted = False
        try:
            self._start_workers(ray)
            self._measure(ray)
            self.placement = self._place()
            try:
                self._start_streams(ray)
                interrupted = self._wait(ray, stop)
            finally:
                self._stop(ray)
        finally:
            if owned:
                ray.shutdown()
        return self.report(time.perf_counter() - began, interrupted)

    # ------------------------------------------------------------------ reporting
    def report(self, seconds: float, interrupted: bool = False) -> dict:
        """Per stream the ``detstream run`` statistics (``frames_in``, ``frames_out``,
        ``frames_dropped``, ``fps``, ``latency_ms``, ...) plus ``name``, ``worker``,
        ``labels`` and ``zone``; per worker its capacity, load and engine calls; totals that
        are the sums over the streams."""
        index = {s.name: i for i, s in enumerate(self.config.streams)}
        streams: list[dict] = []
        workers: list[dict] = []
        for member in self.members:
            group = member.report or {}
            ran = group.get("streams", [])
            for local, spec in enumerate(member.streams):
                entry = dict(ran[local]) if local < len(ran) else _unrun(spec, None)
                entry["error"] = entry.get("error") or member.error
                streams.append(entry | self._identity(spec, index, member.spec.name))
            workers.append({
                "name": member.spec.name, "cpus": member.spec.cpus, "gpus": member.spec.gpus,
                "capacity_fps": member.capacity,
                "load_fps": self.placement.load[member.spec.name] if self.placement else 0.0,
                "streams": [s.name for s in member.streams], "error": member.error,
                "frames_out": group.get("frames_out", 0), "inference": group.get("inference")})
        shortage = self.placement.shortage if self.placement else {}
        for spec in self.config.streams:
            if spec.name in shortage:
                streams.append(_unrun(spec, f"not placed: {shortage[spec.name]}")
                               | self._identity(spec, index, None))
        streams.sort(key=lambda s: s["stream"])
        frames_out = sum(s["frames_out"] for s in streams)
        seconds = max(seconds, 1e-9)
        return {"frames_in": sum(s["frames_in"] for s in streams), "frames_out": frames_out,
                "frames_dropped": sum(s["frames_dropped"] for s in streams),
                "fps": round(frames_out / seconds, 2), "seconds": round(seconds, 3),
                "interrupted": interrupted, "address": self.address,
                "shortage": dict(shortage), "workers": workers, "streams": streams}

    @staticmethod
    def _identity(spec: StreamSpec, index: dict[str, int], worker: str | None) -> dict:
        zone = [list(p) for p in spec.zone] if spec.zone else None
        return {"stream": index[spec.name], "name": spec.name, "worker": worker,
                "demand_fps": spec.fps, "priority": spec.priority,
                "labels": dict(spec.labels), "zone": zone}

