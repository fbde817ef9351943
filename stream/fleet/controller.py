"""Run a fleet: connect to Ray, start the workers, place the streams, watch over them, gather
the statistics.

The controller is a loop that, every ``poll_s`` seconds:

1. applies requests made while running (add or remove a stream, add a worker);
2. asks every worker how its streams are doing; a worker that does not answer because its
   process is gone is *lost*: its streams wait to be placed again, and resume (file streams
   after the last frame their outputs hold, see :mod:`detstream.stream.sinks.journal`;
   live streams at the newest frame; tracks restart with new numbers);
3. takes finished streams off their workers (their outputs are finalised there);
4. places the streams that wait on the workers that have room (:func:`place`), a
   higher-priority stream taking the place of lower-priority ones when nothing else is free
   (they are *shed* and wait for room); a stream whose source cannot be opened is retried
   with exponential back-off.

It ends when no stream runs or waits for a retry. :meth:`Fleet.snapshot` is what ``detstream
fleet status`` shows: a copy the loop publishes every round, safe to read from another
thread (the loop alone changes the state; requests reach it through a queue).

Example:
    >>> report = Fleet(load_fleet("cameras.yaml"), address="local", cpus=2).run()
    >>> report["streams"][0]["frames_out"]
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from detstream.engines.errors import UserInputError
from detstream.stream.fleet.config import FleetConfig, StreamSpec, WorkerSpec
from detstream.stream.fleet.placement import Demand, Slot, place
from detstream.stream.fleet.worker import FleetWorker
from detstream.stream.session import RunConfig, journal_path

Log = Callable[[str], None]
#: Seconds a worker may take to start before the run gives up on it.
START_TIMEOUT = 120.0
#: Seconds a call to a live worker may take (opening a stream, finalising its outputs).
CALL_TIMEOUT = 120.0
#: First wait before a stream whose source failed to open is tried again; it doubles each
#: time up to :data:`RETRY_MAX` seconds.
RETRY_FIRST = 1.0
RETRY_MAX = 60.0
#: Stream states (``state`` in the statistics).
WAITING, RUNNING, RETRYING, DONE, FAILED, REMOVED = (
    "waiting", "running", "retrying", "done", "failed", "removed")
#: Counters of a stream's statistics that add up over its runs (before and after a move).
_COUNTERS = ("frames_in", "frames_out", "frames_dropped", "frames_skipped")


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


def run_config(stream: StreamSpec, resume: bool = False) -> RunConfig:
    """The single-stream run settings of ``stream`` (what ``detstream run`` would use), with
    its progress journal where ``detstream run`` keeps it, so that another worker can resume
    it after a crash (``resume``)."""
    config = RunConfig(source=stream.uri, model=stream.model, imgsz=stream.imgsz,
                       backend=stream.backend, conf=stream.conf, tracker=stream.tracker,
                       output=stream.outputs.video, save_json=stream.outputs.json,
                       save_mot=stream.outputs.mot, zone=stream.zone)
    return replace(config, journal=journal_path(config), resume=resume)


@dataclass
class _Stream:
    """What the controller knows of one stream."""

    spec: StreamSpec
    index: int
    state: str = WAITING
    worker: str | None = None
    resume: bool = False  # the next start continues the outputs already written
    attempts: int = 0  # failed opens in a row
    retry_at: float = 0.0
    error: str | None = None
    shortage: str | None = None  # why it waits (no room)
    restarts: int = 0  # moves after a lost worker, and returns after being shed
    runs: list[dict] = field(default_factory=list)  # statistics of runs that ended
    current: dict | None = None  # statistics of the run going on
    current_start: int = 0  # the frame the run going on started at
    workers: list[str] = field(default_factory=list)  # every worker it ran on
    lost_at: float | None = None  # when its worker was lost (until it resumes)


@dataclass
class _Member:
    """A worker: its spec, its actor, what it can do and what it runs."""

    spec: WorkerSpec
    actor: Any
    pid: int | None = None
    host: str | None = None
    alive: bool = True
    error: str | None = None
    capacity: dict[str, float] = field(default_factory=dict)  # model key -> frames/s
    streams: set[int] = field(default_factory=set)  # numbers of the streams it runs
    inference: dict | None = None
    device: str | None = None  # the loaded model and where it runs, as the worker says
    peak_load: float = 0.0


class Fleet:
    """A fleet run over one Ray cluster.

    Args:
        config: the parsed cameras YAML.
        address: ``local``, ``auto`` or ``ray://HOST:PORT`` (see :func:`connect`).
        cpus: CPUs of a ``local`` instance.
        log: where progress lines go.
        collect_ms: each worker's longest wait for a batch to fill.
        poll_s: seconds between two looks at the workers.
        retries: times a stream whose source fails to open is tried again (``-1``: without
            end) before it counts as failed.
    """

    def __init__(self, config: FleetConfig, address: str = "local", cpus: int | None = None,
                 log: Log | None = None, collect_ms: float = 10.0, poll_s: float = 0.5,
                 retries: int = 5) -> None:
        self.config = config
        self.address = address
        self.cpus = cpus
        self.log = log or (lambda message: None)
        self.collect_ms = collect_ms
        self.poll_s = poll_s
        self.retries = retries
        self.members: list[_Member] = []
        self.streams: list[_Stream] = [_Stream(s, i) for i, s in enumerate(config.streams)]
        self.events: list[dict] = []
        self.began = time.perf_counter()
        self.first_start: float | None = None  # when the first stream started
        self.ended: float | None = None  # when the last stream ended
        self.interrupted = False
        self._requests: queue.Queue[tuple[str, Any, queue.Queue]] = queue.Queue()
        self._ray: Any = None
        # The loop alone changes the state; other threads read the copy it publishes.
        self._published: dict = {}

    # ------------------------------------------------------------------ events
    def _event(self, kind: str, message: str, **fields: Any) -> None:
        """Record and log something that happened (lost worker, moved stream...)."""
        entry = {"time": round(time.perf_counter() - self.began, 3), "event": kind,
                 "message": message} | fields
        self.events.append(entry)
        self.log(message)

    # ------------------------------------------------------------------ workers
    def _spawn(self, spec: WorkerSpec) -> _Member:
        options: dict[str, Any] = {"num_cpus": spec.cpus, "num_gpus": spec.gpus,
                                   "max_restarts": 0}
        shared = os.environ.get("DETSTREAM_CACHE")
        if shared:  # exports and engines made once per key, shared by every worker
            options["runtime_env"] = {"env_vars": {"DETSTREAM_CACHE": shared}}
        if spec.node is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(spec.node,
                                                                            soft=False)
        actor = self._ray.remote(FleetWorker).options(**options).remote(
            spec.name, max(1, int(spec.cpus)), self.collect_ms, spec.gpus)
        return _Member(spec, actor)

    def _start_workers(self, specs: tuple[WorkerSpec, ...]) -> None:
        ray = self._ray
        check_resources(specs, ray.available_resources() if self.members
                        else ray.cluster_resources())
        new = [self._spawn(spec) for spec in specs]
        try:
            answers = ray.get([m.actor.ready.remote() for m in new], timeout=START_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            for member in new:
                ray.kill(member.actor)
            raise UserInputError(f"the workers did not start within {START_TIMEOUT:g} s; check "
                                 "that the cluster has the resources they ask for") from None
        for member, answer in zip(new, answers, strict=True):
            member.pid, member.host = answer["pid"], answer["host"]
        self.members.extend(new)

    def _capacity(self, member: _Member, stream: StreamSpec) -> float | None:
        """Frames/s ``member`` sustains with ``stream``'s model: declared, or measured once
        (None when the worker is lost)."""
        key = stream.model_key
        if key not in member.capacity:
            if member.spec.capacity_fps is not None:
                member.capacity[key] = member.spec.capacity_fps
            else:
                fps = self._call(member, member.actor.measure.remote(run_config(stream)))
                if fps is None:
                    return None
                member.capacity[key] = round(float(fps), 2)
                self.log(f"{member.spec.name}: measured {member.capacity[key]:.1f} frames/s "
                         f"with {key}")
        return member.capacity[key]

    def _call(self, member: _Member, ref: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """``ray.get(ref)``; a worker whose process is gone is marked lost (None back)."""
        ray = self._ray
        try:
            return ray.get(ref, timeout=timeout)
        except ray.exceptions.RayActorError as exc:
            self._lose(member, f"worker {member.spec.name} died ({type(exc).__name__})")
        except ray.exceptions.GetTimeoutError:
            self._lose(member, f"worker {member.spec.name} did not answer within "
                               f"{timeout:g} s")
            ray.kill(member.actor)
        return None

    def _lose(self, member: _Member, reason: str) -> None:
        """``member`` is gone: its streams wait to be placed again and resume there."""
        if not member.alive:
            return
        member.alive, member.error = False, reason
        moved = sorted(member.streams)
        self._event("worker_lost", f"{reason}; moving its streams: "
                    f"{', '.join(self.streams[i].spec.name for i in moved) or 'none'}",
                    worker=member.spec.name)
        for index in moved:
            stream = self.streams[index]
            self._end_run(stream)
            stream.state, stream.worker, stream.resume = WAITING, None, True
            stream.restarts += 1
            stream.lost_at = time.perf_counter()
        member.streams.clear()

    # ------------------------------------------------------------------ streams
    def _end_run(self, stream: _Stream, final: dict | None = None) -> None:
        """Close the books on the run going on (its final statistics, or the last seen)."""
        report = final or stream.current
        if report is not None:
            stream.runs.append(dict(report) | {"start_frame": stream.current_start,
                                               "worker": stream.worker})
        stream.current = None

    def _member(self, name: str | None) -> _Member | None:
        return next((m for m in self.members if m.spec.name == name), None)

    def _start(self, stream: _Stream, member: _Member) -> bool:
        """Open ``stream`` on ``member``; False when it did not start (retry or worker
        lost)."""
        ray = self._ray
        config = run_config(stream.spec, resume=stream.resume)
        try:
            answer = ray.get(member.actor.add.remote(config, stream.index),
                             timeout=CALL_TIMEOUT)
        except ray.exceptions.RayTaskError as exc:
            self._failed_open(stream, exc.cause or exc)
            return False
        except ray.exceptions.RayActorError as exc:
            self._lose(member, f"worker {member.spec.name} died ({type(exc).__name__})")
            return False
        start = int(answer.get("start_frame", 0))
        if stream.runs and stream.resume and start:
            # the run on a lost worker wrote exactly the frames before this one
            last = stream.runs[-1]
            done = max(0, start - last["start_frame"])
            last["frames_out"] = last["frames_in"] = done
        stream.state, stream.worker, stream.current_start = RUNNING, member.spec.name, start
        stream.attempts, stream.error, stream.shortage, stream.resume = 0, None, None, False
        stream.workers.append(member.spec.name)
        member.streams.add(stream.index)
        if self.first_start is None:
            self.first_start = time.perf_counter()
        member.peak_load = max(member.peak_load, self._load(member))
        lost = stream.lost_at
        if lost is not None:
            seconds = time.perf_counter() - lost
            stream.lost_at = None
            where = f"at frame {start}" if start else "at its newest frame"
            self._event("stream_moved", f"stream {stream.spec.name} resumed on "
                        f"{member.spec.name} {where}, {seconds:.1f} s after the loss was "
                        f"noticed", stream=stream.spec.name, worker=member.spec.name,
                        start_frame=start, recovery_seconds=round(seconds, 3))
        else:
            self.log(f"{member.spec.name}: started stream {stream.spec.name}")
        return True

    def _failed_open(self, stream: _Stream, error: BaseException) -> None:
        stream.attempts += 1
        stream.error = str(error).splitlines()[0] if str(error) else type(error).__name__
        if self.retries >= 0 and stream.attempts > self.retries:
            stream.state = FAILED
            self._event("stream_failed", f"stream {stream.spec.name}: {stream.error} (gave up "
                        f"after {stream.attempts} tries)", stream=stream.spec.name)
            return
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (stream.attempts - 1))
        stream.state, stream.retry_at = RETRYING, time.perf_counter() + delay
        self._event("stream_retry", f"stream {stream.spec.name}: {stream.error}; trying again "
                    f"in {delay:g} s (try {stream.attempts + 1})", stream=stream.spec.name,
                    delay=delay)

    def _load(self, member: _Member) -> float:
        return sum(self.streams[i].spec.fps for i in member.streams)

    def _model_of(self, member: _Member) -> str | None:
        return next((self.streams[i].spec.model_key for i in member.streams), None)

    # ------------------------------------------------------------------ placing
    def _schedule(self) -> None:
        """Place the streams that wait on the workers with room; shed lower priorities for
        a higher one when nothing else is free."""
        now = time.perf_counter()
        for stream in self.streams:
            if stream.state == RETRYING and stream.retry_at <= now:
                stream.state = WAITING
        waiting = [s for s in self.streams if s.state == WAITING]
        if not waiting:
            return
        alive = [m for m in self.members if m.alive]
        slots = []
        for member in alive:
            model = self._model_of(member)
            capacity = {}
            for stream in waiting:
                key = stream.spec.model_key
                if model not in (None, key) or key in capacity:
                    continue
                fps = self._capacity(member, stream.spec)
                if fps is not None:
                    capacity[key] = fps - self._load(member)
            if member.alive:
                slots.append(Slot(member.spec.name, capacity, member.spec.gpus))
        demands = [Demand(s.spec.name, s.spec.fps, s.spec.model_key, s.spec.gpu,
                          s.spec.priority) for s in waiting]
        placement = place(demands, slots)
        by_name = {s.spec.name: s for s in waiting}
        for worker, names in placement.assigned.items():
            member = self._member(worker)
            for name in names:
                if member is not None and member.alive:
                    self._start(by_name[name], member)
        for name, reason in placement.shortage.items():
            stream = by_name[name]
            if stream.state != WAITING:
                continue
            if self._shed_for(stream):
                continue  # room was made: placed on the next round
            if stream.shortage and stream.shortage.startswith("shed for"):
                continue  # it waits for room since it was shed; that says why
            if stream.shortage != reason:
                self._event("stream_waits", f"stream {name} waits for room: {reason}",
                            stream=name)
            stream.shortage = reason

    def _shed_for(self, stream: _Stream) -> bool:
        """Stop lower-priority streams on one worker so ``stream`` fits there; True when it
        did."""
        spec = stream.spec
        for member in (m for m in self.members if m.alive):
            if spec.gpu and member.spec.gpus <= 0:
                continue
            if self._model_of(member) not in (None, spec.model_key):
                continue
            capacity = member.capacity.get(spec.model_key)
            if capacity is None:
                continue
            lower = sorted((self.streams[i] for i in member.streams
                            if self.streams[i].spec.priority < spec.priority),
                           key=lambda s: (s.spec.priority, -s.spec.fps))
            free = capacity - self._load(member)
            victims = []
            for victim in lower:
                if free >= spec.fps - 1e-9:
                    break
                victims.append(victim)
                free += victim.spec.fps
            if free < spec.fps - 1e-9:
                continue
            for victim in victims:
                report = self._call(member, member.actor.finish.remote(victim.index))
                member.streams.discard(victim.index)
                self._end_run(victim, report)
                victim.state, victim.worker, victim.resume = WAITING, None, True
                victim.restarts += 1
                victim.shortage = f"shed for {spec.name} (priority {spec.priority})"
                self._event("stream_shed", f"stream {victim.spec.name} (priority "
                            f"{victim.spec.priority}) stopped on {member.spec.name} to make "
                            f"room for {spec.name} (priority {spec.priority})",
                            stream=victim.spec.name, worker=member.spec.name)
            return True
        return False

    # ------------------------------------------------------------------ watching
    def _poll(self) -> None:
        """Ask every live worker about its streams; take finished ones off."""
        polls = [(m, m.actor.poll.remote()) for m in self.members if m.alive]
        for member, ref in polls:
            answer = self._call(member, ref)
            if answer is None:
                continue
            member.inference = answer["inference"] or member.inference
            member.device = answer.get("device") or member.device
            for index, state in answer["streams"].items():
                stream = self.streams[int(index)]
                if stream.state != RUNNING or stream.worker != member.spec.name:
                    continue
                stream.current = state["report"]
                if state["done"]:
                    report = self._call(member, member.actor.finish.remote(stream.index))
                    if report is None:
                        continue  # the worker was lost while finishing: moved instead
                    member.streams.discard(stream.index)
                    self._end_run(stream, report)
                    stream.state, stream.worker = DONE, None
                    stream.error = report.get("error")
                    self.log(f"stream {stream.spec.name} finished on {member.spec.name}: "
                             f"{self.stream_report(stream)['frames_out']} frames")

    def _apply_requests(self) -> None:
        while True:
            try:
                kind, value, answer = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                result = getattr(self, f"_do_{kind}")(value)
            except UserInputError as exc:
                answer.put(exc)
            except Exception as exc:  # reported to whoever asked, the fleet runs on
                answer.put(UserInputError(f"{kind} failed: {exc}"))
            else:
                answer.put(result)

    def _do_add_stream(self, spec: StreamSpec) -> dict:
        here = [s for s in self.streams if s.state != REMOVED]
        if spec.name in {s.spec.name for s in here}:
            raise UserInputError(f"a stream named {spec.name!r} exists; give another name")
        writers = {path: s.spec.name for s in here for path in s.spec.outputs.paths()}
        for path in spec.outputs.paths():
            if path in writers:
                raise UserInputError(f"{path} is written by stream {writers[path]!r} already; "
                                     "put {name} in the file name")
        stream = _Stream(spec, len(self.streams))
        self.streams.append(stream)
        self._event("stream_added", f"stream {spec.name} added ({spec.uri})", stream=spec.name)
        return {"stream": stream.index, "name": spec.name}

    def _do_remove_stream(self, name: str) -> dict:
        stream = next((s for s in self.streams if s.spec.name == name and s.state != REMOVED),
                      None)
        if stream is None:
            raise UserInputError(f"no stream named {name!r}; 'detstream fleet status' lists "
                                 "them")
        member = self._member(stream.worker) if stream.state == RUNNING else None
        if member is not None:
            report = self._call(member, member.actor.finish.remote(stream.index))
            member.streams.discard(stream.index)
            self._end_run(stream, report)
        stream.state, stream.worker = REMOVED, None
        self._event("stream_removed", f"stream {name} removed", stream=name)
        return self.stream_report(stream)

    def _do_add_worker(self, spec: WorkerSpec) -> dict:
        if self._member(spec.name) is not None:
            raise UserInputError(f"a worker named {spec.name!r} exists; give another name")
        self._start_workers((spec,))
        self._event("worker_added", f"worker {spec.name} added", worker=spec.name)
        return {"name": spec.name}

    def request(self, kind: str, value: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """Ask the running loop to ``add_stream`` (a :class:`StreamSpec`), ``remove_stream``
        (a name) or ``add_worker`` (a :class:`WorkerSpec`); returns its answer.

        Raises:
            UserInputError: the request was refused (one line saying why).
        """
        answer: queue.Queue = queue.Queue()
        self._requests.put((kind, value, answer))
        try:
            result = answer.get(timeout=timeout)
        except queue.Empty:
            raise UserInputError(f"the fleet did not answer within {timeout:g} s") from None
        if isinstance(result, BaseException):
            raise result
        return result

    # ------------------------------------------------------------------ running
    def _busy(self) -> bool:
        """Whether anything runs or will be tried again."""
        return any(s.state in (RUNNING, RETRYING) for s in self.streams)

    def run(self, stop: threading.Event | None = None,
            on_start: Callable[[Fleet], None] | None = None) -> dict:
        """Run every stream to its end (or until ``stop`` is set); returns :meth:`report`.
        ``on_start`` is called once the workers run (the status server starts there). Ray is
        shut down afterwards if this run started it."""
        self._ray = ray = import_ray()
        owned = connect(self.address, self.cpus)
        self.began = time.perf_counter()
        try:
            specs = self.config.workers or cluster_workers(ray.nodes())
            self._start_workers(specs)
            self._published = self.report()
            if on_start is not None:
                on_start(self)
            try:
                self._loop(stop)
            finally:
                self._stop()
        finally:
            if owned:
                ray.shutdown()
        return self.report()

    def _loop(self, stop: threading.Event | None) -> None:
        while True:
            if stop is not None and stop.is_set():
                self.interrupted = True
                self.log("stopping: the workers finish the frames in flight")
                for member in (m for m in self.members if m.alive):
                    self._call(member, member.actor.drain.remote("interrupted"))
                return
            self._apply_requests()
            self._poll()
            self._schedule()
            self._published = self.report()
            if not self._busy() and self._requests.empty():
                self.ended = time.perf_counter()
                return
            time.sleep(self.poll_s)

    def _stop(self) -> None:
        for member in self.members:
            if not member.alive:
                continue
            reports = self._call(member, member.actor.stop.remote()) or {}
            for index, report in reports.items():
                stream = self.streams[int(index)]
                if stream.state == RUNNING:
                    self._end_run(stream, report)
                    stream.state, stream.worker = DONE, None
        for member in self.members:
            self._ray.kill(member.actor)

    # ------------------------------------------------------------------ reporting
    def stream_report(self, stream: _Stream) -> dict:
        """One stream's statistics over all its runs: the keys of ``detstream run
        --stats-json`` (counters summed over the runs, rates and latency of the last), plus
        its name, state, worker, restarts, labels and zone."""
        runs = stream.runs + ([stream.current] if stream.current else [])
        spec = stream.spec
        if runs:
            last = runs[-1]
            entry = {key: sum(r.get(key, 0) for r in runs) for key in _COUNTERS}
            entry |= {"uri": spec.uri, "fps": last.get("fps", 0.0),
                      "latency_ms": last.get("latency_ms"), "source": last.get("source"),
                      "scores": last.get("scores")}
        else:
            entry = {key: 0 for key in _COUNTERS} | {
                "uri": spec.uri, "fps": 0.0, "latency_ms": None, "source": None,
                "scores": None}
        error = stream.error or next((r.get("error") for r in reversed(runs)
                                      if r.get("error")), None)
        zone = [list(p) for p in spec.zone] if spec.zone else None
        return entry | {"stream": stream.index, "name": spec.name, "state": stream.state,
                        "worker": stream.worker or (stream.workers[-1] if stream.workers
                                                    else None),
                        "workers": list(stream.workers), "restarts": stream.restarts,
                        "attempts": stream.attempts, "error": error,
                        "waiting_for": stream.shortage if stream.state == WAITING else None,
                        "demand_fps": spec.fps, "priority": spec.priority,
                        "labels": dict(spec.labels), "zone": zone}

    def _worker_report(self, member: _Member) -> dict:
        running = sorted(member.streams)
        return {"name": member.spec.name, "cpus": member.spec.cpus, "gpus": member.spec.gpus,
                "pid": member.pid, "host": member.host, "alive": member.alive,
                "capacity_fps": dict(member.capacity), "load_fps": self._load(member),
                "peak_load_fps": member.peak_load,
                "model": self._model_of(member), "device": member.device,
                "streams": [self.streams[i].spec.name for i in running],
                "ran": [s.spec.name for s in self.streams if member.spec.name in s.workers],
                "frames_out": self._frames_on(member),
                "inference": member.inference, "error": member.error}

    def _frames_on(self, member: _Member) -> int:
        """Frames the streams wrote on ``member`` (runs that ended there, and those going
        on)."""
        name = member.spec.name
        ended = sum(r.get("frames_out", 0) for s in self.streams for r in s.runs
                    if r.get("worker") == name)
        return ended + sum((self.streams[i].current or {}).get("frames_out", 0)
                           for i in member.streams)

    def snapshot(self) -> dict:
        """The fleet as of the loop's last round, as :meth:`report` (safe from another
        thread: the loop publishes a fresh copy every round)."""
        return self._published

    def report(self) -> dict:
        """Per stream its statistics (:meth:`stream_report`), per worker its capacity, load,
        model and counters, the events so far, and totals that are the sums over the
        streams."""
        streams = [self.stream_report(s) for s in self.streams]
        workers = [self._worker_report(m) for m in self.members]
        # frames/s over the time streams ran (workers starting and models loading left out)
        start = self.first_start if self.first_start is not None else self.began
        seconds = max((self.ended or time.perf_counter()) - start, 1e-9)
        frames_out = sum(s["frames_out"] for s in streams)
        shortage = {s["name"]: s["waiting_for"] for s in streams if s["waiting_for"]}
        return {"frames_in": sum(s["frames_in"] for s in streams), "frames_out": frames_out,
                "frames_dropped": sum(s["frames_dropped"] for s in streams),
                "fps": round(frames_out / seconds, 2), "seconds": round(seconds, 3),
                "interrupted": self.interrupted, "address": self.address,
                "shortage": shortage, "workers": workers, "streams": streams,
                "events": list(self.events)}

