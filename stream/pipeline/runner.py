"""The pipeline runner: capture → preprocess → infer → track → draw → output, each stage in its
own thread, bounded queues between them, so the stages overlap and throughput approaches the
slowest stage instead of the sum of all of them.

Inference runs in an :class:`~detstream.stream.pipeline.service.InferenceService`: the infer
stage submits each frame and passes it on at once; the track stage waits for its result. With
several workers several frames are in flight; the queue keeps them in frame order. Several
pipelines can share one service (many streams, batched engine calls).

The runner owns the wiring; stages are plain functions of a packet. File sources block on a
full queue (backpressure, no frame lost); live sources drop in their newest-frame slot before
the pipeline. An exception in any stage stops every stage promptly, is reported with the
stage's name, and the outputs are still finalised.

Programs that embed the pipeline should start with ``OMP_WAIT_POLICY=PASSIVE`` in their
environment, as the ``detstream`` commands do (:mod:`detstream.stream.pipeline.threads`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np

from detstream.engines.predict import Predictor
from detstream.engines.runtime.torch_threads import use_torch_threads
from detstream.engines.spec import Detections
from detstream.stream.analytics import Rules
from detstream.stream.analytics.draw import draw_rules
from detstream.stream.analytics.heatmap import Heatmap
from detstream.stream.draw import Annotator
from detstream.stream.pipeline.late import DetectionJob, LateTracking
from detstream.stream.pipeline.memory import PeriodicTrim
from detstream.stream.pipeline.metrics import RunMetrics
from detstream.stream.pipeline.motion_gate import GateConfig, MotionGate
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.pipeline.service import InferenceResult, InferenceService
from detstream.stream.pipeline.threads import (
    STAGE_NICENESS,
    inference_fills_cores,
    single_threaded_opencv,
    yield_to_inference,
)
from detstream.stream.sinks.base import OutputError, Sink, StopRequested
from detstream.stream.sources.base import Source
from detstream.stream.track.base import Tracker
from detstream.stream.zones import Zone

_END = object()  # end-of-stream marker passed down the queues
_POLL = 0.05  # seconds between checks of the stop flag while waiting on a queue
ADAPTIVE_QUEUE = 6  # packets each queue holds on the adaptive schedule


def _waiter(pending: Future) -> Callable[[float], bool]:
    """Wait up to some seconds for ``pending``; True when it is done (failed included)."""
    def wait(seconds: float) -> bool:
        try:
            pending.exception(timeout=seconds)
        except FutureTimeout:
            return False
        return True
    return wait


def runs_at_camera_rate(live: bool, drop: bool, detect_every: int) -> bool:
    """Whether a pipeline runs the adaptive schedule: a live source that drops frames, with
    ``detect_every`` 0 (every frame out at the camera's rate, the detector beside it)."""
    return live and drop and detect_every == 0


@dataclass
class _Claim:
    """A frame given to the detector (adaptive schedule): the future its result goes to, and
    the ``predictor`` and ``letterbox`` that preprocessed it (in ``context``, once known)."""

    packet: FramePacket
    outcome: Future[InferenceResult]
    context: dict


class StageError(RuntimeError):
    """A stage failed; ``stage`` names it and ``__cause__`` holds the original error."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"the {stage} stage failed: {type(error).__name__}: {error}")
        self.stage = stage


@dataclass(frozen=True)
class PipelineOptions:
    """How the runner behaves.

    Attributes:
        detect_every: run the detector on every K-th frame; the tracker carries boxes between.
            0 (the default) adapts: every frame of a file, and on a live source that drops
            frames every frame is tracked and output at the camera's rate while the detector
            runs beside it whenever it is free, its late results applied to the frames they
            were made on (:mod:`~detstream.stream.pipeline.late`).
        queue_size: packets each inter-stage queue holds (small: latency stays low).
        max_frames: stop after this many frames (``None``: until the source ends).
        overlay: draw FPS and latency on the annotated frames.
        just_in_time: live sources only (default: on for live sources that drop frames, with
            a fixed ``detect_every``): take a frame the detector will see from the source's
            newest-frame slot only when it can go straight through preprocessing into
            inference, timed from the stages' recent durations, so frames never wait in
            queues and latency stays near the processing time; and when the newest frame is
            already more than half a frame interval old, wait for the next one instead.
            Frames the detector skips are taken as they come. Files never wait for this.
        favour_inference: run every stage thread but inference at a lower CPU priority
            (:func:`detstream.stream.pipeline.threads.yield_to_inference`), so the slowest stage
            never waits for a core while the others have slack.
        hold_ms: adaptive schedule: a frame the detector is working on waits in the track
            stage for its result until it is this old (from capture), so that most frames
            leave with their own detections; after that it leaves at its predicted boxes and
            the result is applied when it comes. Bounds the latency such a frame adds.
        in_flight: frames of this stream inference may hold at once (``None``: one for live
            sources, the service's worker count for files).
        inference_workers: workers of the pipeline's own inference service, when it is not
            given one.
        zone: detections outside it are dropped before tracking; its outline is drawn.
        rules: counting lines and watched areas fed the tracks of every frame; their events
            join the frame's track events, their counts are drawn and reported
            (:class:`~detstream.stream.analytics.Rules`).
        heatmap: drawn under the boxes of every annotated frame (its sink adds the tracks).
        motion_gate: adaptive schedule on a static camera: the detector takes a frame only
            when :class:`~detstream.stream.pipeline.motion_gate.MotionGate` (these settings)
            says it pays (new motion, moving or stale tracks, a time limit); ``None``: off.
    """

    detect_every: int = 0
    queue_size: int = 2
    max_frames: int | None = None
    overlay: bool = True
    just_in_time: bool | None = None
    favour_inference: bool = True
    hold_ms: float = 70.0
    in_flight: int | None = None
    inference_workers: int = 1
    zone: Zone | None = None
    rules: Rules | None = None
    heatmap: Heatmap | None = None
    motion_gate: GateConfig | None = None


class Pipeline:
    """Run one source through detection, tracking, drawing and outputs.

    Args:
        source: frames (see :func:`detstream.stream.sources.open_source`).
        predictor: preprocess, inference and post-processing for one model.
        tracker: gives identities (``None``: detections only).
        annotator: draws frames for the video and window outputs (``None``: no drawing).
        sinks: outputs, written in frame order by one thread.
        options: runner settings.
        on_packet: called with every finished packet (from the output thread).
        stream_id: the id stamped on this stream's packets.
        service: the inference service to submit to (shared by several pipelines); without
            one the pipeline starts its own with ``options.inference_workers`` workers.
    """

    def __init__(self, source: Source, predictor: Predictor, tracker: Tracker | None = None,
                 annotator: Annotator | None = None, sinks: Sequence[Sink] = (),
                 options: PipelineOptions | None = None,
                 on_packet: Callable[[FramePacket], None] | None = None,
                 stream_id: int = 0, service: InferenceService | None = None) -> None:
        self.source = source
        self.predictor = predictor
        self.tracker = tracker
        self.annotator = annotator
        self.sinks = list(sinks)
        self.options = options or PipelineOptions()
        self.on_packet = on_packet
        self.stream_id = stream_id
        self.metrics = RunMetrics()
        self.error: StageError | None = None
        self.stopped_by: str | None = None
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._threads: list[threading.Thread] = []
        jit = self.options.just_in_time
        self._dropping = bool(source.live and getattr(source, "drop", True))
        self._jit = self._dropping if jit is None else jit
        self._credit = threading.Semaphore(1)  # frames allowed between capture and inference
        self._ema: dict[str, float] = {}
        self._infer_started = 0.0
        self.service = service
        self._own_service = service is None
        self._waited = 0.0  # seconds the track stage waited for inference on this packet
        self._slots: threading.Semaphore | None = None  # frames inference may hold at once
        self._late = LateTracking(tracker, predictor.spec.class_names)
        self._detected = 0  # frames submitted to the detector
        self._preprocessing = threading.Lock()  # the predictor's buffers are not shared
        self._arrived = threading.Condition()  # a frame passed the infer stage (adaptive)
        self._newest: FramePacket | None = None
        self._waiting_for_next = False  # the feeder holds the detector for the next frame
        self._claim: _Claim | None = None
        self._gate: MotionGate | None = None  # made when options.motion_gate is set
        self._tracked = np.empty((0, 4), np.float32)  # the newest tracks' boxes, for the gate
        self._camera_rate = False  # set at start: frames first, inference after
        self._favour = False  # set at start: whether the other stages yield to inference

    # ------------------------------------------------------------------ control
    def stop(self, reason: str = "stopped") -> None:
        """Ask every stage to finish the packet in hand and exit."""
        self._halt(self._stop, reason)

    def drain(self, reason: str = "interrupted") -> None:
        """Stop taking new frames; every frame already captured goes through every stage and
        output, then the pipeline ends (the first Ctrl-C). :meth:`stop` ends it at once."""
        self._halt(self._draining, reason)

    def _halt(self, flag: threading.Event, reason: str) -> None:
        """Record the first reason, raise ``flag`` and free a capture waiting on the source."""
        with self._lock:
            if self.stopped_by is None:
                self.stopped_by = reason
        flag.set()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:  # a live source waiting for its next frame lets go now
            interrupt()

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    def _fail(self, stage: str, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = StageError(stage, error)
                self.error.__cause__ = error
        self.stop(f"{stage} failed")

    def _put(self, q: queue.Queue, item: object) -> bool:
        """Put with backpressure; False when stopping."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue, name: str) -> object | None:
        """Next item, or None when stopping."""
        while not self._stop.is_set():
            try:
                item = q.get(timeout=_POLL)
            except queue.Empty:
                continue
            self.metrics.add_depth(name, q.qsize())
            return item
        return None

    # ------------------------------------------------------------------ stages
    def _stage(self, name: str, work: Callable[[FramePacket], None], inbox: queue.Queue,
               outbox: queue.Queue | None) -> None:
        """A stage loop: take, work, stamp the time, pass on; the end marker passes through."""
        self._set_priority(name)
        if name == "track":
            # Post-processing a few thousand candidates: torch's thread pool on them cost
            # twice the CPU of one thread (0.65 against 0.32 ms a frame) for no gain in time.
            use_torch_threads(1)
        try:
            while True:
                item = self._get(inbox, name)
                if item is None:
                    return
                if item is _END:
                    if outbox is not None:
                        self._put(outbox, _END)
                    return
                start = time.perf_counter()
                work(item)
                # Inference is timed by the service (see _track); preprocessing only counts
                # on the frames it works on.
                if name != "infer" and (name != "preprocess" or item.detect):
                    busy = time.perf_counter() - start
                    if name == "track" and self._waited:  # the wait for inference apart
                        busy -= self._waited
                        self.metrics.add_wait("inference", self._waited * 1000.0)
                        self._waited = 0.0
                    item.timings[name] = busy * 1000.0
                    self._learn(name, item.timings[name])
                if outbox is not None and not self._put(outbox, item):
                    return
        except StopRequested as request:
            self.stop(str(request) or "stop requested")
        except BaseException as exc:  # reported to the caller with the stage's name
            self._fail(name, exc)

    def adaptive(self) -> bool:
        """Whether frames are output at the camera's rate with the detector beside them (a
        live source that drops frames, ``detect_every`` 0); ``detect_every`` may change while
        the pipeline runs."""
        return runs_at_camera_rate(self._dropping, True, self.options.detect_every)

    def schedule(self) -> str:
        """The detector's schedule, in words, for the run statistics."""
        every = self.options.detect_every
        if every == 0:
            return ("as often as inference allows (every frame output at the camera's rate)"
                    if self._dropping else "every frame")
        return "every frame" if every == 1 else f"every {every} frames"

    def _set_priority(self, stage: str) -> None:
        if self._camera_rate:  # the frames' path first; inference (and its feeder) after
            if stage == "feeder":
                yield_to_inference()
            return
        # With just-in-time capture, capture and preprocessing run right before inference
        # and inference waits for them: they keep its priority, or anything else on the
        # machine (a browser on the same cores, say) would delay every frame's inference.
        critical = ("infer", "capture", "preprocess") if self._jit else ("infer",)
        if self._favour and stage not in critical:
            yield_to_inference()

    def _learn(self, stage: str, ms: float) -> None:
        """Recent duration of a stage (exponential average), for just-in-time capture."""
        old = self._ema.get(stage)
        self._ema[stage] = ms if old is None else 0.8 * old + 0.2 * ms

    def _wait_for_inference(self) -> bool:
        """Live sources: block until a frame taken now would reach inference as it frees up;
        False when stopping."""
        while not self._credit.acquire(timeout=_POLL):
            if self._stop.is_set() or self._draining.is_set():
                return False
        lead = (self._ema.get("capture", 0.0) + self._ema.get("preprocess", 0.0)) / 1000.0
        wake = self._infer_started + self._ema.get("infer", 0.0) / 1000.0 - lead
        while not self._stop.is_set() and (delay := wake - time.perf_counter()) > 0:
            time.sleep(min(delay, _POLL))
        fresh = getattr(self.source, "wait_for_fresh_frame", None)
        if fresh is not None:
            fresh()  # a stale newest frame: its successor is due within half an interval
        return not self._stop.is_set()

    def _capture(self, outbox: queue.Queue) -> None:
        limit = self.options.max_frames
        count = 0
        self._set_priority("capture")
        try:
            while (not self._stop.is_set() and not self._draining.is_set()
                   and (limit is None or count < limit)):
                adaptive = self.adaptive()
                # Every K-th frame the pipeline takes (not the source's index, which counts
                # dropped frames too: regular drops would otherwise starve the detector).
                every = max(1, self.options.detect_every)
                scheduled = not adaptive and count % every == 0
                if self._jit and scheduled and not self._wait_for_inference():
                    break
                start = time.perf_counter()
                frame = self.source.read()
                if frame is None:
                    break
                # Adaptive: the feeder picks the frames the detector sees (see _feed).
                packet = FramePacket(self.stream_id, frame.index, frame.pts, frame.captured,
                                     frame.image, truth=frame.truth, detect=scheduled,
                                     tag=frame.tag)
                packet.timings["capture"] = (time.perf_counter() - start) * 1000.0
                self._learn("capture", packet.timings["capture"])
                if adaptive:  # the feeder may give it to the detector at once
                    self._offer(packet)
                if not self._put(outbox, packet):
                    return
                count += 1
            self._put(outbox, _END)  # after a drain too: the frames in flight finish
        except BaseException as exc:
            self._fail("capture", exc)

    def _preprocess(self, packet: FramePacket) -> None:
        packet.predictor = self.predictor  # may be swapped between frames (reconfigure)
        if packet.detect:
            with self._preprocessing:  # the feeder may preprocess too (a schedule changed)
                packet.batch, (packet.letterbox,) = packet.predictor.preprocess([packet.image])

    def _infer(self, packet: FramePacket) -> None:
        """Submit the frame to the inference service and pass it on; its result is waited
        for in the track stage, so several frames can be in flight, in order."""
        if not packet.detect:
            return
        while not self._slots.acquire(timeout=_POLL):
            if self._stop.is_set():
                raise StopRequested(self.stopped_by or "stopped")
        self._infer_started = time.perf_counter()
        self._detected += 1
        if self._jit:
            self._credit.release()  # the next frame may be taken (when due)
        if packet.detect:
            packet.pending = self.service.submit(packet.predictor.backend, packet.batch,
                                                 self.stream_id)
            packet.pending.add_done_callback(lambda _: self._slots.release())
            packet.batch = None

    def _offer(self, packet: FramePacket) -> None:
        """A frame just captured (adaptive schedule): the newest, for the feeder; or, when the
        feeder holds the detector waiting for the next frame, this one, claimed here before
        it goes on (so the track stage knows to wait for its result)."""
        with self._arrived:
            self._newest = packet
            if self._claim is None and self._waiting_for_next and self._gate_passes(packet):
                self._waiting_for_next = False
                self._claim = self._claim_job(packet)
            self._arrived.notify_all()

    def _gate_passes(self, packet: FramePacket) -> bool:
        """Whether the motion gate (when on) lets the free detector take this frame."""
        config = self.options.motion_gate
        if config is None:
            return True
        if self._gate is None or self._gate.config != config:
            self._gate = MotionGate(config, self.source.fps or 30.0)
        return self._gate.decide(packet.image, self._tracked, packet.captured).detect

    def _claim_job(self, packet: FramePacket) -> _Claim:
        """Announce the detector's work on ``packet`` before it starts; the feeder completes
        the claim's future with the result."""
        claim = _Claim(packet, Future(), {})
        claim.outcome.set_running_or_notify_cancel()
        self._late.submit(DetectionJob(packet.index, packet.image, claim.outcome.done,
                                       self._resolver(claim.context, claim.outcome,
                                                      own_timing=False),
                                       wait=_waiter(claim.outcome)))
        return claim

    def _feed(self) -> None:
        """Adaptive schedule: whenever the detector is free, give it the newest frame (or,
        when that is already over half a frame interval old, the next one), preprocessed
        here, off the frames' path; its result is applied when it comes
        (:class:`LateTracking`)."""
        interval = 1.0 / self.source.fps if self.source.fps else 1.0 / 30.0
        taken = -1
        self._set_priority("feeder")
        try:
            while not self._stop.is_set():
                if not self.adaptive():
                    time.sleep(_POLL)
                    continue
                if not self._slots.acquire(timeout=_POLL):
                    continue
                claim = self._next_for_detector(taken, interval / 2.0)
                if claim is None:
                    self._slots.release()
                    continue
                packet, outcome = claim.packet, claim.outcome
                taken = packet.index
                self._detected += 1
                start = time.perf_counter()
                predictor = self.predictor
                with self._preprocessing:
                    batch, (letterbox,) = predictor.preprocess([packet.image])
                self.metrics.add_stage("preprocess", (time.perf_counter() - start) * 1000.0)
                claim.context.update(predictor=predictor, letterbox=letterbox)
                pending = self.service.submit(predictor.backend, batch, self.stream_id)
                pending.add_done_callback(lambda done, out=outcome: self._relay(done, out))
        except BaseException as exc:
            self._fail("infer", exc)

    def _relay(self, pending: Future[InferenceResult], outcome: Future[InferenceResult]
               ) -> None:
        """The service's answer to a claimed frame's future; the detector is free again."""
        self._slots.release()
        error = pending.exception()
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(pending.result())

    def _next_for_detector(self, taken: int, fresh: float) -> _Claim | None:
        """The newest frame not given to the detector yet if it is at most ``fresh`` seconds
        old, else the next one to arrive (claimed by :meth:`_offer`); None when the pipeline
        stops or is no longer adaptive."""
        with self._arrived:
            newest = self._newest
            if (newest is not None and newest.index > taken
                    and time.perf_counter() - newest.captured <= fresh
                    and self._gate_passes(newest)):
                return self._claim_job(newest)
            self._waiting_for_next = True
            while self._claim is None and not self._stop.is_set() and self.adaptive():
                self._arrived.wait(_POLL)
            self._waiting_for_next = False
            claimed, self._claim = self._claim, None
            return claimed

    def _result(self, pending: Future[InferenceResult]) -> InferenceResult:
        """Wait for a submitted frame's inference; a failed engine call fails the infer
        stage."""
        while True:
            try:
                return pending.result(timeout=_POLL)
            except FutureTimeout:
                if self._stop.is_set():
                    raise StopRequested(self.stopped_by or "stopped") from None
            except BaseException as exc:
                self._fail("infer", exc)
                raise

    def _track(self, packet: FramePacket) -> None:
        """Track the frame. A frame the schedule gave the detector waits for its result
        here; the adaptive schedule's results are applied when they come
        (:class:`LateTracking`)."""
        if self._late.tracker is not self.tracker:  # swapped by a reconfiguration
            self._late.use(self.tracker)
        self._late.class_names = packet.predictor.spec.class_names
        job = None
        if not packet.detect and self.adaptive():
            self._hold(packet)
        if packet.detect:
            pending = packet.pending
            packet.pending = None
            waiting = time.perf_counter()
            result = self._result(pending)
            self._waited = time.perf_counter() - waiting
            packet.timings["infer"] = result.infer_ms
            self._learn("infer", result.infer_ms)
            context = {"predictor": packet.predictor, "letterbox": packet.letterbox}
            job = DetectionJob(packet.index, packet.image, pending.done,
                               self._resolver(context, pending, own_timing=True))
        step = self._late.step(packet.index, packet.image, job, keep_states=self.adaptive())
        own = [found for index, found in step.found if index == packet.index]
        packet.found = own[0] if own else None
        packet.found_late = [(index, found) for index, found in step.found
                             if index != packet.index]
        packet.detections = step.detections
        self._tracked = step.detections.boxes
        if self.tracker is not None:
            packet.events = step.events
        rules = self.options.rules
        if rules:
            ended = [event.track_id for event in step.events if event.kind == "ended"]
            packet.events = [*packet.events,
                             *rules.update(step.detections, packet.index,
                                           self._stream_time(packet), ended)]
            packet.analytics = rules.state()  # the journal records the counts at this frame

    def _stream_time(self, packet: FramePacket) -> float:
        """Seconds on the stream's clock: the frame's timestamp, or its index over the
        frame rate where the source gives none."""
        if packet.pts is not None:
            return float(packet.pts)
        return packet.index / (self.source.fps or 30.0)

    def _hold(self, packet: FramePacket) -> None:
        """Adaptive schedule: wait for the detector's work on this frame, if it has any,
        until the frame is ``hold_ms`` old."""
        job = self._late.job_for(packet.index)
        if job is None or job.wait is None or job.ready():
            return
        start = time.perf_counter()
        deadline = packet.captured + self.options.hold_ms / 1000.0
        while not self._stop.is_set() and (left := deadline - time.perf_counter()) > 0:
            if job.wait(min(left, _POLL)):
                break
        self._waited = time.perf_counter() - start

    def _resolver(self, context: dict, pending: Future[InferenceResult], own_timing: bool
                  ) -> Callable[[], Detections]:
        """What turns a frame's finished inference into its detections (frame pixels,
        inside the zone), with the ``predictor`` and ``letterbox`` in ``context`` that
        preprocessed it. ``own_timing``: the inference time is on the frame's packet; else it
        is counted on its own."""
        def resolve() -> Detections:
            result = self._result(pending)
            if not own_timing:
                self.metrics.add_stage("infer", result.infer_ms)
            (dets,) = context["predictor"].postprocess(result.raw, [context["letterbox"]])
            if self.options.zone is not None:
                dets = self.options.zone.keep(dets)
            return dets

        return resolve

    def _draw(self, packet: FramePacket) -> None:
        overlay = None
        if self.options.overlay and self.metrics.latency_ms.count:
            fps = self.metrics.recent_fps()
            overlay = f"{fps:.1f} FPS  latency {self.metrics.latency_ms.last:.0f} ms"
        image = packet.image
        if self.options.heatmap is not None:  # under the boxes, on a copy of the frame
            image = self.options.heatmap.draw(image.copy())
        packet.annotated = self.annotator.draw(image, packet.detections, overlay)
        if self.options.zone is not None:
            self.options.zone.draw(packet.annotated)
        if self.options.rules:
            draw_rules(packet.annotated, self.options.rules)

    def _output(self, packet: FramePacket) -> None:
        for sink in self.sinks:
            try:
                sink.write(packet)
            except OSError as exc:  # a full disk, a removed folder: say which output
                raise OutputError(sink, exc) from exc
        packet.done = time.perf_counter()

    def _finish(self, inbox: queue.Queue, results: queue.Queue | None) -> None:
        """The last stage: outputs, metrics, callback, iteration results."""
        self._set_priority("output")
        trim = PeriodicTrim()
        try:
            while True:
                item = self._get(inbox, "output")
                if item is None or item is _END:
                    return
                start = time.perf_counter()
                self._output(item)
                item.timings["output"] = (time.perf_counter() - start) * 1000.0
                self.metrics.add_packet(item.timings, (item.done - item.captured) * 1000.0,
                                        item.done)
                trim()  # long runs: freed frame buffers go back to the system
                if self.on_packet is not None:
                    self.on_packet(item)
                if results is not None and not self._put(results, item):
                    return
        except StopRequested as request:
            self.stop(str(request) or "stop requested")
        except BaseException as exc:
            self._fail("output", exc)
        finally:
            self._finished.set()

    # ------------------------------------------------------------------ running
    def start(self, results: queue.Queue | None = None) -> None:
        """Start every stage thread (``run`` and iteration call this)."""
        single_threaded_opencv()  # the stages are the parallelism (see the function)
        size = max(1, self.options.queue_size)
        if self.adaptive():
            # Frames held for their detections back up behind the track stage; capture goes
            # on meanwhile (the hold bounds the wait, not the queues).
            size = max(size, ADAPTIVE_QUEUE)
        names = ["capture", "preprocess", "infer", "track"]
        work = [self._preprocess, self._infer, self._track]
        if self.annotator is not None:
            names.append("draw")
            work.append(self._draw)
        queues = [queue.Queue(maxsize=size) for _ in names]
        # Adaptive from the start: every frame out at the camera's rate comes first.
        self._camera_rate = self.adaptive() and self.options.favour_inference
        if self.service is None:
            self.service = InferenceService(workers=max(1, self.options.inference_workers),
                                            niceness=STAGE_NICENESS if self._camera_rate else 0)
        backend = self.predictor.backend
        self._favour = self.options.favour_inference and not inference_fills_cores(
            backend.device.type, getattr(backend, "threads", None), self.service.workers)
        in_flight = self.options.in_flight or (1 if self.source.live else self.service.workers)
        self._slots = threading.Semaphore(max(1, in_flight))
        self.metrics.started = time.perf_counter()
        self._threads = [threading.Thread(target=self._capture, args=(queues[0],),
                                          name="capture", daemon=True)]
        for i, fn in enumerate(work):
            stage = names[i + 1]
            self._threads.append(threading.Thread(
                target=self._stage, args=(stage, fn, queues[i], queues[i + 1]),
                name=stage, daemon=True))
        self._threads.append(threading.Thread(target=self._finish, args=(queues[-1], results),
                                              name="output", daemon=True))
        if self.source.live:
            self._threads.append(threading.Thread(target=self._feed, name="feeder",
                                                  daemon=True))
        for thread in self._threads:
            thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the output stage to finish; True when it has."""
        return self._finished.wait(timeout)

    def close(self) -> None:
        """Stop, join every thread (bounded), close the source and finalise every sink."""
        self.stop(self.stopped_by or "finished")
        deadline = time.perf_counter() + 10.0
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.perf_counter()))
        finished = self.metrics.recent_finished
        self.metrics.ended = finished[-1] if finished else time.perf_counter()
        if self.service is not None:
            if self._own_service:
                self.service.close()
            else:
                self.service.forget(self.stream_id)
        errors: list[Exception] = []
        try:
            self.source.close()
        except Exception as exc:  # finalise the outputs, then report it
            errors.append(exc)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # finalise the others, then report the first
                errors.append(OutputError(sink, exc) if isinstance(exc, OSError) else exc)
        if errors and self.error is None:
            self.error = StageError("output", errors[0])
            self.error.__cause__ = errors[0]

    def run(self) -> dict:
        """Run to the end of the source (or a stop); returns the metrics report.

        Raises:
            StageError: a stage failed (outputs were finalised first).
            KeyboardInterrupt: Ctrl-C (outputs were finalised first).
        """
        self.start()
        try:
            while not self.wait(0.1):
                if self._stop.is_set() and not any(t.is_alive() for t in self._threads):
                    break
        finally:
            self.close()
        if self.error is not None:
            raise self.error
        return self.report()

    def report(self) -> dict:
        stats = self.source.stats
        report = self.metrics.report(stats.frames_read, stats.frames_dropped)
        report["detection"] = {"schedule": self.schedule(), "frames_detected": self._detected,
                               "late": self._late.stats.report()}
        if self._gate is not None:
            report["detection"]["gate"] = self._gate.stats
        if self.options.rules:
            report["analytics"] = self.options.rules.report()
        report["frames_skipped"] = stats.frames_skipped
        report["source"] = {"reconnects": stats.reconnects, "stalls": stats.stalls,
                            "outage_seconds": round(stats.outage_seconds, 3),
                            "frames_before_start": stats.frames_before_start,
                            "error": stats.error}
        return report

    def __iter__(self) -> Iterator[FramePacket]:
        """Run in the background and yield each finished packet (frame, detections with
        track ids, per-stage timings). Stopping the iteration stops the pipeline."""
        results: queue.Queue = queue.Queue(maxsize=max(2, self.options.queue_size))
        self.start(results)
        try:
            while True:
                try:
                    item = results.get(timeout=_POLL)
                except queue.Empty:
                    if self._finished.is_set() and results.empty():
                        break
                    continue
                yield item
        finally:
            self.close()
            if self.error is not None:
                raise self.error
