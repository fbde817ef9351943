"""One run of the product: a source, a model, a tracker, drawing and outputs, wired into a
:class:`~detstream.stream.pipeline.runner.Pipeline`. The ``detstream run`` command and the Python
API
(:func:`track`) are thin shells over :func:`build`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from detstream.engines.data.video import hardware_decoder
from detstream.engines.errors import UserInputError
from detstream.engines.paths import writable_dir
from detstream.engines.predict import Predictor
from detstream.engines.runtime.base import Backend
from detstream.engines.runtime.select import open_backend
from detstream.stream.analytics.heatmap import Heatmap
from detstream.stream.analytics.rules import Rules, rules_for
from detstream.stream.analytics.specs import merged_rules
from detstream.stream.draw import Annotator
from detstream.stream.pipeline.motion_gate import GateConfig
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.pipeline.runner import Pipeline, PipelineOptions, runs_at_camera_rate
from detstream.stream.pipeline.service import InferenceService
from detstream.stream.pipeline.threads import (
    InferencePlan,
    inference_plan,
    inference_threads,
    one_thread_fits,
)
from detstream.stream.run_config import DEFAULT_SOURCE, RunConfig  # noqa: F401  (re-exported)
from detstream.stream.sinks import DisplaySink, JsonlSink, MotSink, Sink, VideoSink
from detstream.stream.sinks.alerts import MqttSink, WebhookSink
from detstream.stream.sinks.clips import ClipSink
from detstream.stream.sinks.heatmap import HeatmapSink
from detstream.stream.sinks.journal import (
    ProgressJournal,
    ResumePoint,
    journal_for,
    read_journal,
    truncate_outputs,
)
from detstream.stream.sinks.truth import TruthScorer
from detstream.stream.sources import Source, open_source
from detstream.stream.track import make_tracker
from detstream.stream.zones import Zone

Log = Callable[[str], None]


def write_stats(path: str | Path, report: dict) -> None:
    """A run's report as indented JSON at ``path``."""
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def journal_path(config: RunConfig) -> Path | None:
    """Where ``detstream run`` keeps the progress journal of ``config``: its first file output
    (``save_json``, else ``save_mot``, else ``output``) plus ``.progress``; ``None`` when it
    writes no file output (a device such as ``/dev/stdout`` is not one)."""
    first = next((p for p in (config.save_json, config.save_mot, config.output)
                  if p is not None and (Path(p).is_file() or not Path(p).exists())), None)
    return journal_for(first) if first is not None else None


def resumed_video_path(path: str | Path) -> Path:
    """A new file beside the video ``path`` for a resumed run's continuation (a finished MP4
    cannot be appended to): ``clip.mp4`` → ``clip.resumed-1.mp4``, the first number free."""
    path = Path(path)
    n = 1
    while (candidate := path.with_name(f"{path.stem}.resumed-{n}{path.suffix}")).exists():
        n += 1
    return candidate


def next_run_dir(root: str | Path = "runs") -> Path:
    """``runs/run-N`` with the first N not taken."""
    root = Path(root)
    taken = {int(m.group(1)) for p in root.glob("run-*")
             if (m := re.fullmatch(r"run-(\d+)", p.name))} if root.is_dir() else set()
    n = 1
    while n in taken:
        n += 1
    return root / f"run-{n}"


def _class_ids(classes: Sequence[str] | None, names: Sequence[str]) -> list[int] | None:
    if not classes:
        return None
    ids = []
    for item in classes:
        if str(item).isdigit():
            ids.append(int(item))
        elif item in names:
            ids.append(list(names).index(item))
        else:
            raise UserInputError(f"--classes {item!r} is not a class of this model "
                                 f"({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")
    bad = [i for i in ids if not 0 <= i < len(names)]
    if bad:
        raise UserInputError(f"--classes {bad[0]} is out of range; the model has {len(names)} "
                             "classes")
    return ids


def _rules(config: RunConfig, class_names: Sequence[str], point: ResumePoint | None
           ) -> Rules | None:
    """The counting lines and watched areas ``config`` asks for, checked against the model's
    classes; a resumed run's carry on from the counts its journal recorded."""
    lines, areas, dwell = merged_rules(config.rules, config.lines, config.areas, config.dwell)
    try:
        rules = rules_for(lines, areas, dwell, class_names)
    except ValueError as exc:
        raise UserInputError(f"{exc}; name classes the model detects, or leave them out") \
            from None
    if rules is not None and point is not None and point.analytics:
        rules.restore(point.analytics)
    return rules


#: The RunConfig fields that choose and load the model.
MODEL_FIELDS = ("model", "weights", "names", "backend", "device", "imgsz", "threads",
                "cuda_graph", "int8", "max_batch")
#: The fields a running session can change from its next frame (:meth:`Session.reconfigure`).
LIVE_FIELDS = (*MODEL_FIELDS, "conf", "iou", "classes", "tracker", "tracker_options",
               "detect_every", "motion_gate", "draw")


class BackendCache:
    """Models opened once per process and shared by its runs (the demo's many sessions).

    Keyed by the fields that decide what is loaded; the least recently used model is let go
    when more than ``size`` are open. Backends are safe to share between pipelines:
    onnxruntime and torch run concurrent calls, and the TensorRT backend serialises its own.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = max(1, size)
        self._models: OrderedDict[tuple, Backend] = OrderedDict()
        self._lock = threading.Lock()
        self._opening: dict[tuple, threading.Lock] = {}

    @staticmethod
    def key(config: RunConfig) -> tuple:
        return tuple(str(getattr(config, name)) for name in MODEL_FIELDS)

    def open(self, config: RunConfig, log: Log | None = None) -> Backend:
        """The model ``config`` names, opened now or taken from the cache."""
        key = self.key(config)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            opening = self._opening.setdefault(key, threading.Lock())
        with opening:  # two sessions asking for one new model open it once
            with self._lock:
                if key in self._models:
                    return self._models[key]
            backend = _open(config, log)
            with self._lock:
                self._models[key] = backend
                self._opening.pop(key, None)
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
            return backend

    def __len__(self) -> int:
        return len(self._models)


def _open_model(config: RunConfig, backends: BackendCache | None, log: Log | None) -> Backend:
    """The model ``config`` names, through ``backends`` when given."""
    return backends.open(config, log) if backends is not None else _open(config, log)


def _open(config: RunConfig, log: Log | None) -> Backend:
    return open_backend(config.model, config.backend, config.device, config.imgsz,
                        max_batch=config.max_batch, names=config.names,
                        threads=config.threads or inference_threads(),
                        cuda_graph=config.cuda_graph, weights=config.weights, log=log,
                        int8=config.int8)


def _one_thread_if_it_fits(config: RunConfig, fps: float | None,
                           backends: BackendCache | None, plan: InferencePlan, log: Log
                           ) -> tuple[Backend | None, InferencePlan]:
    """Camera rate on the CPU: the model opened with one thread, and a plan of one thread,
    when a call (as the INT8 choice timed it) fits the camera's frame interval
    (:func:`one_thread_fits`); else ``(None, plan)``, and the caller opens it with ``plan``'s
    threads."""
    backend = _open_model(replace(config, threads=1), backends, log)
    if backend.device.type != "cpu":
        return backend, plan  # threads do not matter there
    # The INT8 choice timed the file at one thread (once per machine); a model without a
    # choice is not timed here (the live source runs meanwhile: its first frames would be
    # dropped) and keeps every core, as the FP32 default model wants.
    call_ms = backend.call_ms
    if call_ms is not None and one_thread_fits(call_ms, fps):
        log(f"inference: one thread, a call takes {call_ms:.1f} ms of the camera's "
            f"{1000.0 / (fps or 30.0):.0f} ms frame interval (a second thread would take the "
            "core the frames need)")
        return backend, InferencePlan(1, plan.workers)
    if call_ms is not None:
        log(f"inference: {plan.threads} threads, one takes {call_ms:.1f} ms a call, too slow "
            f"for the camera's {1000.0 / (fps or 30.0):.0f} ms frame interval")
    if backends is None:
        backend.close()
    return None, plan


@dataclass
class Session:
    """A built run: the pipeline plus what the command reports afterwards."""

    pipeline: Pipeline
    config: RunConfig
    truth: TruthScorer | None
    describe: str
    backends: BackendCache | None = None
    plan: InferencePlan | None = None
    resumed: ResumePoint | None = None
    #: The model that runs (``Backend.info()``: description, precision and why it was
    #: chosen), reported as the statistics' ``model``.
    model_info: dict | None = None

    def scores(self) -> dict | None:
        return self.truth.scores() if self.truth is not None else None

    def report(self, interrupted: bool = False) -> dict:
        """The pipeline's report once it has closed, with the scores against the truth
        (synthetic sources, unless ``interrupted``), written to ``stats_json`` when the
        config names one."""
        report = self.pipeline.report()
        if self.model_info is not None:
            report["model"] = self.model_info
        for sink in self.pipeline.sinks:
            said = sink.report()
            if said is not None:
                report[sink.name] = said
        scores = self.scores() if not interrupted else None
        if scores is not None:
            report["scores"] = scores
        if self.config.stats_json is not None:
            write_stats(self.config.stats_json, report)
        return report

    def reconfigure(self, config: RunConfig, log: Log | None = None) -> None:
        """Apply ``config`` to the running pipeline from its next frame.

        The model (and where it runs), thresholds, class filter, tracker, drawing and
        ``detect_every`` can change (:data:`LIVE_FIELDS`); the source and outputs cannot.
        Everything is checked and opened first, then swapped: on an error nothing changes.
        A new model or class set restarts the tracks.

        Raises:
            UserInputError: a field that cannot change while running, or a bad value.
        """
        old = self.config
        fixed = [name for name in RunConfig.__dataclass_fields__
                 if name not in LIVE_FIELDS and getattr(config, name) != getattr(old, name)]
        if fixed:
            raise UserInputError(f"{', '.join(fixed)} cannot change while the run is going; "
                                 "start a new run")
        pipeline = self.pipeline
        backend = pipeline.predictor.backend
        if any(getattr(config, n) != getattr(old, n) for n in MODEL_FIELDS):
            threads = config.threads or (self.plan.threads if self.plan else None)
            backend = _open_model(replace(config, threads=threads), self.backends, log)
        predictor = pipeline.predictor
        if (backend is not predictor.backend or config.conf != old.conf or config.iou != old.iou
                or config.classes != old.classes):
            predictor = Predictor(backend, conf=config.conf, iou=config.iou,
                                  classes=_class_ids(config.classes, backend.spec.class_names))
        tracker = pipeline.tracker
        new_names = backend.spec.class_names != pipeline.predictor.spec.class_names
        if (new_names or config.tracker != old.tracker
                or config.tracker_options != old.tracker_options):
            fps = tracking_fps(pipeline.source.fps)
            tracker = (make_tracker(config.tracker, fps, config.tracker_options)
                       if config.tracker else None)
        annotator = pipeline.annotator
        if annotator is not None and (config.draw != old.draw or new_names):
            annotator = Annotator(config.draw)
        options = replace(pipeline.options, detect_every=config.detect_every,
                          overlay=config.draw.overlay,
                          motion_gate=GateConfig() if config.motion_gate else None)
        if backend is not pipeline.predictor.backend:
            self.describe = backend.describe()
            self.model_info = backend.info()
        # Each stage reads these once per packet; the packet keeps the predictor that
        # preprocessed it, so a frame in flight finishes on the model it started with.
        pipeline.predictor, pipeline.tracker = predictor, tracker
        pipeline.annotator, pipeline.options = annotator, options
        self.config = config


#: The frame rate the tracker assumes when the source does not tell it.
ASSUMED_FPS = 30.0


def tracking_fps(fps: float | None, log: Log | None = None) -> float:
    """The source's frame rate for the tracker (its lost-track time and motion noise are in
    seconds), or :data:`ASSUMED_FPS` with a note through ``log`` when the source has none."""
    if fps and fps > 0:
        return float(fps)
    if log is not None:
        log(f"the source does not say its frame rate: the tracker assumes {ASSUMED_FPS:g} fps "
            "(lost tracks are kept, and motion is predicted, per second of video)")
    return ASSUMED_FPS


def build(config: RunConfig, log: Log | None = None,
          on_packet: Callable[[FramePacket], None] | None = None,
          extra_sinks: Sequence[Sink] = (), backends: BackendCache | None = None,
          service: InferenceService | None = None, stream_id: int = 0) -> Session:
    """Open the source, the model and the outputs, and wire the pipeline (not started).

    The steps: check what only this machine can tell (:func:`check_here`), find where an
    interrupted run stopped (:func:`resume_point`), open the source and the model, open the
    outputs (:func:`open_outputs`), wire the pipeline. ``backends`` shares opened models
    between the runs of one process (each is opened once); ``service`` shares one inference
    service between streams (``stream_id`` tells them apart); without one the pipeline runs
    its own. :meth:`Session.report` writes ``stats_json`` when the run ends.
    """
    log = log or (lambda message: None)
    check_here(config)
    journal, point = resume_point(config, stream_id)
    source = open_source(config.source, live=config.live, drop=config.drop, log=log,
                         stall_timeout=config.stall_timeout, loop=config.loop,
                         decoder=config.decoder,
                         start_frame=point.next_frame if point else config.start_frame)
    sinks: list[Sink] = []
    try:
        # Live sources: one frame in flight, every core but one on it (every core at the
        # camera's rate, where inference gives way); files: several single-threaded calls at
        # once (see inference_plan). A shared service decides alone.
        camera_rate = runs_at_camera_rate(source.live, config.drop, config.detect_every)
        plan = inference_plan(source.live, config.threads, camera_rate=camera_rate)
        backend = None
        if camera_rate and config.threads is None and plan.threads > 1:
            backend, plan = _one_thread_if_it_fits(config, source.fps, backends, plan, log)
        if backend is None:
            backend = _open_model(replace(config, threads=plan.threads), backends, log)
        if backend.device.type != "cpu":
            plan = inference_plan(source.live, plan.threads, gpu=True)
        predictor = Predictor(backend, conf=config.conf, iou=config.iou,
                              classes=_class_ids(config.classes, backend.spec.class_names))
        fps = tracking_fps(source.fps, log if config.tracker else None)
        first_id = point.max_track_id + 1 if point is not None else 1
        tracker = (make_tracker(config.tracker, fps, config.tracker_options, first_id=first_id)
                   if config.tracker else None)
        sinks = open_outputs(config, source, journal, point, log, extra_sinks)
        truth = None
        if config.source.startswith("synthetic://"):
            truth = TruthScorer(backend.spec.class_names)
            sinks.insert(len(sinks) - (journal is not None), truth)
    except BaseException:
        source.close()
        for sink in sinks:
            sink.close()
        raise
    # Draw when an output shows the frames, or a caller gets the packets (they may).
    drawing = on_packet is not None or any(sink.shows_frames for sink in sinks)
    annotator = Annotator(config.draw) if drawing else None
    max_frames = config.max_frames
    if max_frames is not None and point is not None:  # the frames written before count
        max_frames = max(0, max_frames - point.next_frame)
    options = PipelineOptions(detect_every=config.detect_every, max_frames=max_frames,
                              overlay=config.draw.overlay, inference_workers=plan.workers,
                              zone=Zone(config.zone) if config.zone else None,
                              rules=_rules(config, backend.spec.class_names, point),
                              heatmap=next((sink.heatmap for sink in sinks
                                            if isinstance(sink, HeatmapSink)), None),
                              motion_gate=GateConfig() if config.motion_gate else None)
    pipeline = Pipeline(source, predictor, tracker, annotator, sinks, options, on_packet,
                        stream_id=stream_id, service=service)
    return Session(pipeline, config, truth, backend.describe(), backends, plan, resumed=point,
                   model_info=backend.info())


def check_here(config: RunConfig) -> None:
    """What a :class:`RunConfig` cannot check by itself, because it depends on this machine
    (its own fields were checked when it was made).

    Raises:
        UserInputError: ``decoder`` nvdec where there is no NVIDIA decoder.
    """
    hardware_decoder(config.decoder)


def resume_point(config: RunConfig, stream_id: int = 0
                 ) -> tuple[Path | None, ResumePoint | None]:
    """The progress journal of ``config`` (``{stream}`` filled in) and, when resuming, where
    the interrupted run it records stopped (``None``: start from the first frame)."""
    journal = (Path(str(config.journal).replace("{stream}", str(stream_id)))
               if config.journal is not None else None)
    point = read_journal(journal) if config.resume and journal is not None else None
    return journal, point


def open_outputs(config: RunConfig, source: Source, journal: Path | None,
                 point: ResumePoint | None, log: Log,
                 extra_sinks: Sequence[Sink] = ()) -> list[Sink]:
    """The sinks ``config`` asks for, in the order they receive each frame, the journal
    last (a frame is recorded once every file output holds it). Called once the source and
    the model have opened: a mistaken command leaves no empty run folder behind. A resumed
    run's files are cut back to the last whole frame and appended to, and its video goes on
    in a new file beside ``output``.
    """
    for path in (config.output, config.save_json, config.save_mot, config.stats_json,
                 config.heatmap, journal):
        if path is not None:
            writable_dir(Path(path).parent)
    if config.clips is not None:
        writable_dir(config.clips)
    output = config.output
    if point is not None:
        _resume_outputs(config, point, journal)
        if output is not None:
            output = resumed_video_path(output)
            log(f"the video continues in {output} ({config.output} cannot be appended to)")
        log(f"resuming from frame {point.next_frame} ({journal}); new track ids from "
            f"{point.max_track_id + 1}")
    elif journal is not None:
        if config.resume:
            log(f"no progress journal at {journal}: starting from the first frame")
        journal.unlink(missing_ok=True)  # before the outputs start again from empty
    sinks: list[Sink] = []
    try:
        if output is not None:
            # A live source's video is encoded as frames come (no lookahead, no frame threads
            # holding frames back): p95 processing 83 -> 69 ms in `bench live` at 640.
            # Runs without an end write fragmented MP4: memory stays flat (a plain MP4 holds
            # every frame's index until it closes) and a crash leaves a playable file.
            sinks.append(VideoSink(output, tracking_fps(source.fps), preset=config.video_preset,
                                   tune="zerolatency" if source.live else None,
                                   fragmented=source.live or config.loop < 0))
        append = point is not None
        if config.save_json is not None:
            sinks.append(JsonlSink(config.save_json, append=append))
        if config.save_mot is not None:
            sinks.append(MotSink(config.save_mot, append=append))
        if config.show:
            sinks.append(DisplaySink(f"detstream: {config.source}"))
        if config.webhook is not None:
            sinks.append(WebhookSink(config.webhook, config.alert_cooldown))
        if config.mqtt is not None:
            sinks.append(_mqtt_sink(config))
        if config.heatmap is not None:
            sinks.append(HeatmapSink(config.heatmap, Heatmap(config.heatmap_half_life),
                                     source.fps))
        if config.clips is not None:
            sinks.append(ClipSink(config.clips, tracking_fps(source.fps), config.clip_pre,
                                  config.clip_post, live=source.live))
        sinks.extend(extra_sinks)
        if journal is not None:  # last: a frame is recorded once every output holds it
            files = [sink for sink in sinks if isinstance(sink, JsonlSink | MotSink)]
            sinks.append(ProgressJournal(journal, files, resume=point))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def _mqtt_sink(config: RunConfig) -> MqttSink:
    try:
        return MqttSink(config.mqtt, config.alert_cooldown)
    except ImportError:
        raise UserInputError("--mqtt needs paho-mqtt: pip install 'detstream[alerts]'") \
            from None


def _resume_outputs(config: RunConfig, point: ResumePoint, journal: Path) -> None:
    """Check that the run being resumed wrote the same files, then cut them back to the
    last whole frame.

    Raises:
        UserInputError: an output the journal does not know (it would miss the frames before
            the interruption), or a recorded output missing or shorter than recorded.
    """
    for option, path in (("--save-json", config.save_json), ("--save-mot", config.save_mot)):
        if path is not None and str(Path(path).resolve()) not in point.sizes:
            raise UserInputError(f"cannot resume: {option} {path} was not written by the run "
                                 f"{journal} records; give that run's outputs, or run "
                                 "without --resume to start over")
    truncate_outputs(point, journal)


def track(source: str = DEFAULT_SOURCE, model: str = "default", **options) -> Iterator[FramePacket]:
    """Run detection and tracking on ``source`` and yield each finished frame.

    Each :class:`FramePacket` holds ``image`` (BGR), ``annotated`` (drawn), ``detections``
    (with track ids), ``found`` (the detector's own output), ``truth`` (synthetic sources) and
    ``timings`` (stage → ms). Keyword options are :class:`RunConfig` fields.

    Example:
        >>> for packet in track("clip.mp4", tracker="bytetrack", conf=0.3):
        ...     print(packet.index, packet.detections.track_ids)
    """
    config = RunConfig.from_options(source=source, model=model, **options)
    session = build(config, on_packet=lambda packet: None)
    yield from session.pipeline
