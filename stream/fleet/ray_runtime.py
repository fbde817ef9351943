"""Everything the controller asks of Ray: starting or joining it, the default workers of a
cluster, starting worker actors and calling them.

Ray is imported only when a fleet starts (:func:`import_ray`), so ``stream`` imports without
it. A call to a worker whose process is gone, or that does not answer in time, raises
:class:`WorkerGone`; an error the worker's own method raised comes back as Ray raises it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from detstream.engines.errors import UserInputError
from detstream.stream.fleet.config import WorkerSpec
from detstream.stream.fleet.worker import FleetWorker

#: Seconds a worker may take to start before the run gives up on it.
START_TIMEOUT = 120.0
#: Seconds a call to a live worker may take (opening a stream, finalising its outputs).
CALL_TIMEOUT = 120.0


class WorkerGone(Exception):
    """A worker's process is gone, or it stopped answering (it was then killed); the
    message says which, naming the worker."""


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
    # ray.init installs its own SIGTERM handler, which ends the process on the spot; keep
    # ours (finish the frames in flight, finalise every output, report).
    keep = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _init(ray, address, cpus)
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in keep.items():
                if handler is not None:
                    signal.signal(sig, handler)
    return True


def _init(ray: Any, address: str, cpus: int | None) -> None:
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


def cluster_workers(nodes: list[dict]) -> tuple[WorkerSpec, ...]:
    """Workers for a YAML that lists none, from ``ray.nodes()``: one per GPU (1 CPU + 1 GPU
    each); on a node without GPUs one per CPU (processes of one engine thread each ran
    1.07-1.10x as fast as the plain multi-stream process here, one process holding both
    CPUs 0.97-0.99x; see BENCHMARKS.md). Each is tied to its node."""
    workers: list[WorkerSpec] = []
    for number, node in enumerate(n for n in nodes if n.get("Alive", True)):
        resources = node.get("Resources", {})
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        node_id = node.get("NodeID")
        kind, count = ("gpu", gpus) if gpus else ("cpu", cpus)
        workers += [WorkerSpec(name=f"{kind}-{number}-{i}", cpus=1, gpus=1 if gpus else 0,
                               node=node_id) for i in range(count)]
    return tuple(workers)


def check_resources(workers: tuple[WorkerSpec, ...], resources: dict[str, float]) -> None:
    """Raise when the workers ask for more CPUs or GPUs than the cluster has (Ray would
    otherwise wait for them forever)."""
    for kind, key in (("cpus", "CPU"), ("gpus", "GPU")):
        wanted = sum(getattr(w, kind) for w in workers)
        have = resources.get(key, 0.0)
        if wanted > have + 1e-9:
            raise UserInputError(f"the workers ask for {wanted:g} {key}s and the cluster has "
                                 f"{have:g}; lower their {kind} or list fewer workers")


def spawn(ray: Any, spec: WorkerSpec, collect_ms: float) -> Any:
    """A :class:`FleetWorker` actor for ``spec`` (not waited for: see :func:`wait_ready`);
    Ray never restarts it (the controller moves a lost worker's streams itself)."""
    options: dict[str, Any] = {"num_cpus": spec.cpus, "num_gpus": spec.gpus,
                               "max_restarts": 0}
    shared = os.environ.get("DETSTREAM_CACHE")
    if shared:  # exports and engines made once per key, shared by every worker
        options["runtime_env"] = {"env_vars": {"DETSTREAM_CACHE": shared}}
    if spec.node is not None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(spec.node, soft=False)
    return ray.remote(FleetWorker).options(**options).remote(
        spec.name, max(1, int(spec.cpus)), collect_ms, spec.gpus)


def wait_ready(ray: Any, actors: list[Any], timeout: float = START_TIMEOUT) -> list[dict]:
    """Each actor's :meth:`FleetWorker.ready` answer, once all run; when they do not start
    within ``timeout`` seconds they are killed and one line says so."""
    try:
        return ray.get([actor.ready.remote() for actor in actors], timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        for actor in actors:
            ray.kill(actor)
        raise UserInputError(f"the workers did not start within {timeout:g} s; check "
                             "that the cluster has the resources they ask for") from None


def ask(ray: Any, actor: Any, ref: Any, worker: str, timeout: float = CALL_TIMEOUT) -> Any:
    """``ray.get(ref)``, ``ref`` being a call to ``actor`` (the worker named ``worker``).

    Raises:
        WorkerGone: the worker's process is gone, or it did not answer within ``timeout``
            seconds (it is then killed, so that it does not write beside the worker its
            streams move to).
    """
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.RayActorError as exc:
        raise WorkerGone(f"worker {worker} died ({type(exc).__name__})") from None
    except ray.exceptions.GetTimeoutError:
        ray.kill(actor)
        raise WorkerGone(f"worker {worker} did not answer within {timeout:g} s") from None
