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

This module is the loop; each part of the work lives in its own module: :mod:`.ray_runtime`
(starting Ray and the workers, calling them), :mod:`.states` (the records of streams and
workers, and the moves a stream's state may make), :mod:`.scheduling` and :mod:`.placement`
(the decisions: room, shedding, retries), :mod:`.report` (the statistics) and
:mod:`.streams` (what a worker runs for a stream).

Example:
    >>> report = Fleet(load_fleet("cameras.yaml"), address="local", cpus=2).run()
    >>> report["streams"][0]["frames_out"]
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from detstream.engines.errors import UserInputError
from detstream.stream.fleet.config import FleetConfig, StreamSpec, WorkerSpec
from detstream.stream.fleet.placement import Slot, place
from detstream.stream.fleet.ray_runtime import (
    CALL_TIMEOUT,
    WorkerGone,
    ask,
    check_resources,
    cluster_workers,
    connect,
    import_ray,
    spawn,
    wait_ready,
)
from detstream.stream.fleet.report import (
    active_seconds,
    fleet_report,
    stream_report,
    worker_report,
)
from detstream.stream.fleet.scheduling import (
    Occupied,
    Running,
    choose_shedding,
    demand_of,
    models_to_measure,
    retry_delay,
    slot_of,
)
from detstream.stream.fleet.states import (
    StreamRecord,
    StreamState,
    WorkerRecord,
    load_of,
    model_of,
)
from detstream.stream.fleet.streams import run_config

# What others import from here (run_config lived here before it had a module of its own).
__all__ = ["Fleet", "cluster_workers", "import_ray", "run_config"]

Log = Callable[[str], None]


class Fleet:
    """A fleet run over one Ray cluster.

    Args:
        config: the parsed cameras YAML.
        address: ``local``, ``auto`` or ``ray://HOST:PORT`` (see :func:`.ray_runtime.connect`).
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
        self.members: list[WorkerRecord] = []
        self.streams: list[StreamRecord] = [StreamRecord(s, i)
                                            for i, s in enumerate(config.streams)]
        self.events: list[dict] = []
        self.began = time.perf_counter()
        self.first_start: float | None = None  # when the first stream started
        self.ended: float | None = None  # when the last stream ended
        self.interrupted = False
        self._requests: queue.Queue[tuple[str, Any, queue.Queue]] = queue.Queue()
        self._ray: Any = None
        # The loop alone changes the state; other threads read the copy it publishes.
        self._published: dict = {}

    # ------------------------------------------------------------------ running
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
                for member in self._alive():
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

    def _busy(self) -> bool:
        """Whether anything runs or will be tried again."""
        return any(s.state in (StreamState.RUNNING, StreamState.RETRYING)
                   for s in self.streams)

    def _stop(self) -> None:
        for member in self.members:
            if not member.alive:
                continue
            reports = self._call(member, member.actor.stop.remote()) or {}
            for index, report in reports.items():
                stream = self.streams[int(index)]
                if stream.state is StreamState.RUNNING:
                    stream.finished(report)
        for member in self.members:
            self._ray.kill(member.actor)

    # ------------------------------------------------------------------ events
    def _event(self, kind: str, message: str, **fields: Any) -> None:
        """Record and log something that happened (lost worker, moved stream...)."""
        entry = {"time": round(time.perf_counter() - self.began, 3), "event": kind,
                 "message": message} | fields
        self.events.append(entry)
        self.log(message)

    # ------------------------------------------------------------------ workers
    def _start_workers(self, specs: tuple[WorkerSpec, ...]) -> None:
        ray = self._ray
        check_resources(specs, ray.available_resources() if self.members
                        else ray.cluster_resources())
        new = [WorkerRecord(spec, spawn(ray, spec, self.collect_ms)) for spec in specs]
        answers = wait_ready(ray, [m.actor for m in new])
        for member, answer in zip(new, answers, strict=True):
            member.pid, member.host = answer["pid"], answer["host"]
        self.members.extend(new)

    def _member(self, name: str | None) -> WorkerRecord | None:
        return next((m for m in self.members if m.spec.name == name), None)

    def _alive(self) -> list[WorkerRecord]:
        return [m for m in self.members if m.alive]

    def _ask(self, member: WorkerRecord, ref: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """``ray.get(ref)``, ``ref`` being a call to ``member``.

        Raises:
            WorkerGone: its process is gone or it did not answer (nothing is marked lost:
                the caller decides when, see :meth:`_lose`).
        """
        return ask(self._ray, member.actor, ref, member.spec.name, timeout)

    def _call(self, member: WorkerRecord, ref: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """``ray.get(ref)``; a worker whose process is gone is marked lost (None back). An
        error raised by the worker's method reaches the caller."""
        try:
            return self._ask(member, ref, timeout)
        except WorkerGone as gone:
            self._lose(member, str(gone))
            return None

    def _lose(self, member: WorkerRecord, reason: str) -> None:
        """``member`` is gone: its streams wait to be placed again and resume there."""
        if not member.alive:
            return
        member.alive, member.error = False, reason
        moved = sorted(member.streams)
        self._event("worker_lost", f"{reason}; moving its streams: "
                    f"{', '.join(self.streams[i].spec.name for i in moved) or 'none'}",
                    worker=member.spec.name)
        now = time.perf_counter()
        for index in moved:
            self.streams[index].lost(now)
        member.streams.clear()

    def _capacity(self, member: WorkerRecord, stream: StreamSpec) -> float:
        """Frames/s ``member`` sustains with ``stream``'s model: declared, or measured once.

        Raises:
            WorkerGone: it was lost while measuring (not marked lost here).
        """
        key = stream.model_key
        if key not in member.capacity:
            if member.spec.capacity_fps is not None:
                member.capacity[key] = member.spec.capacity_fps
            else:
                fps = self._ask(member, member.actor.measure.remote(run_config(stream)))
                member.capacity[key] = round(float(fps), 2)
                self.log(f"{member.spec.name}: measured {member.capacity[key]:.1f} frames/s "
                         f"with {key}")
        return member.capacity[key]

    # ------------------------------------------------------------------ streams
    def _start(self, stream: StreamRecord, member: WorkerRecord) -> bool:
        """Open ``stream`` on ``member``; False when it did not start (retry or worker
        lost)."""
        config = run_config(stream.spec, resume=stream.resume)
        try:
            answer = self._call(member, member.actor.add.remote(config, stream.index))
        except self._ray.exceptions.RayTaskError as exc:  # the source did not open
            self._failed_open(stream, exc.cause or exc)
            return False
        if answer is None:
            return False  # the worker was lost: its streams wait for another
        start = int(answer.get("start_frame", 0))
        now = time.perf_counter()
        recovery = stream.started(member.spec.name, start, now)
        member.streams.add(stream.index)
        if self.first_start is None:
            self.first_start = now
        member.peak_load = max(member.peak_load, load_of(member, self.streams))
        if recovery is not None:
            where = f"at frame {start}" if start else "at its newest frame"
            self._event("stream_moved", f"stream {stream.spec.name} resumed on "
                        f"{member.spec.name} {where}, {recovery:.1f} s after the loss was "
                        f"noticed", stream=stream.spec.name, worker=member.spec.name,
                        start_frame=start, recovery_seconds=round(recovery, 3))
        else:
            self.log(f"{member.spec.name}: started stream {stream.spec.name}")
        return True

    def _failed_open(self, stream: StreamRecord, error: BaseException) -> None:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        delay = retry_delay(stream.attempts + 1, self.retries)
        if delay is None:
            stream.gave_up(text)
            self._event("stream_failed", f"stream {stream.spec.name}: {text} (gave up "
                        f"after {stream.attempts} tries)", stream=stream.spec.name)
            return
        stream.retry_later(text, time.perf_counter() + delay)
        self._event("stream_retry", f"stream {stream.spec.name}: {text}; trying again "
                    f"in {delay:g} s (try {stream.attempts + 1})", stream=stream.spec.name,
                    delay=delay)

    def _finish(self, member: WorkerRecord, stream: StreamRecord) -> dict | None:
        """Finalise ``stream``'s outputs on ``member`` and take it off there; its final
        statistics, or None when the worker was lost meanwhile (the stream then waits to
        be placed again)."""
        report = self._call(member, member.actor.finish.remote(stream.index))
        if report is not None:
            member.streams.discard(stream.index)
        return report

    # ------------------------------------------------------------------ placing
    def _schedule(self) -> None:
        """Place the streams that wait on the workers with room; shed lower priorities for
        a higher one when nothing else is free."""
        now = time.perf_counter()
        for stream in self.streams:
            if stream.state is StreamState.RETRYING and stream.retry_at <= now:
                stream.retry()
        waiting = [s for s in self.streams if s.state is StreamState.WAITING]
        if not waiting:
            return
        slots, losses = self._offers([s.spec for s in waiting])
        for member, reason in losses:  # after the pass, so that it sees one fleet
            self._lose(member, reason)
        placement = place([demand_of(s.spec) for s in waiting], slots)
        by_name = {s.spec.name: s for s in waiting}
        for worker, names in placement.assigned.items():
            member = self._member(worker)
            for name in names:
                if member is not None and member.alive:
                    self._start(by_name[name], member)
        for name, reason in placement.shortage.items():
            stream = by_name[name]
            if stream.state is not StreamState.WAITING:
                continue
            if self._shed_for(stream):
                continue  # room was made: placed on the next round
            if stream.waits_for(reason):
                self._event("stream_waits", f"stream {name} waits for room: {reason}",
                            stream=name)

    def _offers(self, waiting: list[StreamSpec]
                ) -> tuple[list[Slot], list[tuple[WorkerRecord, str]]]:
        """The room each live worker offers the ``waiting`` streams (their models measured
        where not known yet), and the workers lost while measuring, with why."""
        slots: list[Slot] = []
        losses: list[tuple[WorkerRecord, str]] = []
        for member in self._alive():
            wanted = models_to_measure(model_of(member, self.streams), waiting)
            try:
                capacity = {key: self._capacity(member, spec) for key, spec in wanted.items()}
            except WorkerGone as gone:
                losses.append((member, str(gone)))
                continue
            slots.append(slot_of(member.spec.name, member.spec.gpus, capacity,
                                 load_of(member, self.streams)))
        return slots, losses

    def _shed_for(self, stream: StreamRecord) -> bool:
        """Stop lower-priority streams on one worker so ``stream`` fits there; True when it
        did."""
        spec = stream.spec
        alive = self._alive()
        shedding = choose_shedding(demand_of(spec), [self._occupied(m) for m in alive])
        if shedding is None:
            return False
        member = next(m for m in alive if m.spec.name == shedding.worker)
        reason = f"shed for {spec.name} (priority {spec.priority})"
        for index in shedding.victims:
            victim = self.streams[index]
            report = self._finish(member, victim)
            if report is None:
                break  # the worker was lost: the loss moved its streams already
            victim.shed(report, reason)
            self._event("stream_shed", f"stream {victim.spec.name} (priority "
                        f"{victim.spec.priority}) stopped on {member.spec.name} to make "
                        f"room for {spec.name} (priority {spec.priority})",
                        stream=victim.spec.name, worker=member.spec.name)
        return True

    def _occupied(self, member: WorkerRecord) -> Occupied:
        running = tuple(Running(i, self.streams[i].spec.fps, self.streams[i].spec.priority)
                        for i in sorted(member.streams))
        return Occupied(member.spec.name, member.spec.gpus, model_of(member, self.streams),
                        dict(member.capacity), running)

    # ------------------------------------------------------------------ watching
    def _poll(self) -> None:
        """Ask every live worker about its streams; take finished ones off."""
        polls = [(m, m.actor.poll.remote()) for m in self._alive()]
        for member, ref in polls:
            answer = self._call(member, ref)
            if answer is None:
                continue
            member.inference = answer["inference"] or member.inference
            member.device = answer.get("device") or member.device
            for index, state in answer["streams"].items():
                stream = self.streams[int(index)]
                if stream.state is not StreamState.RUNNING or \
                        stream.worker != member.spec.name:
                    continue
                stream.current = state["report"]
                if state["done"]:
                    report = self._finish(member, stream)
                    if report is None:
                        continue  # the worker was lost while finishing: moved instead
                    stream.finished(report)
                    self.log(f"stream {stream.spec.name} finished on {member.spec.name}: "
                             f"{self.stream_report(stream)['frames_out']} frames")

    # ------------------------------------------------------------------ requests
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
        here = [s for s in self.streams if s.state is not StreamState.REMOVED]
        if spec.name in {s.spec.name for s in here}:
            raise UserInputError(f"a stream named {spec.name!r} exists; give another name")
        writers = {path: s.spec.name for s in here for path in s.spec.outputs.paths()}
        for path in spec.outputs.paths():
            if path in writers:
                raise UserInputError(f"{path} is written by stream {writers[path]!r} already; "
                                     "put {name} in the file name")
        stream = StreamRecord(spec, len(self.streams))
        self.streams.append(stream)
        self._event("stream_added", f"stream {spec.name} added ({spec.uri})", stream=spec.name)
        return {"stream": stream.index, "name": spec.name}

    def _do_remove_stream(self, name: str) -> dict:
        stream = next((s for s in self.streams
                       if s.spec.name == name and s.state is not StreamState.REMOVED), None)
        if stream is None:
            raise UserInputError(f"no stream named {name!r}; 'detstream fleet status' lists "
                                 "them")
        running = stream.state is StreamState.RUNNING
        member = self._member(stream.worker) if running else None
        report = self._finish(member, stream) if member is not None else None
        stream.removed(report)
        self._event("stream_removed", f"stream {name} removed", stream=name)
        return self.stream_report(stream)

    def _do_add_worker(self, spec: WorkerSpec) -> dict:
        if self._member(spec.name) is not None:
            raise UserInputError(f"a worker named {spec.name!r} exists; give another name")
        self._start_workers((spec,))
        self._event("worker_added", f"worker {spec.name} added", worker=spec.name)
        return {"name": spec.name}

    # ------------------------------------------------------------------ reporting
    def stream_report(self, stream: StreamRecord) -> dict:
        """One stream's statistics over all its runs (see :func:`.report.stream_report`)."""
        return stream_report(stream)

    def snapshot(self) -> dict:
        """The fleet as of the loop's last round, as :meth:`report` (safe from another
        thread: the loop publishes a fresh copy every round)."""
        return self._published

    def report(self) -> dict:
        """Per stream its statistics (:meth:`stream_report`), per worker its capacity, load,
        model and counters, the events so far, and totals that are the sums over the
        streams."""
        seconds = active_seconds(self.began, self.first_start, self.ended,
                                 time.perf_counter())
        return fleet_report([stream_report(s) for s in self.streams],
                            [worker_report(m, self.streams) for m in self.members],
                            self.events, seconds=seconds, interrupted=self.interrupted,
                            address=self.address)
