"""``detstream bench live``: paced live sources run as ``detstream run`` runs them, each set
against the same frames read as a file with the detector on every frame (issue 36, "real time
on a plain CPU").

Each case is a live source run for a while with tracking, drawing and H.264 output, through
:func:`~detstream.stream.session.build` as ``detstream run`` builds it (with ``--detect-every
0``, the default, every frame is tracked and output at the camera's rate while the detector
works beside it). Latency (capture to finished) is set against the processing time per frame:
the sum of its stage times except capture (which, for a live source, is waiting for the next
frame); the time the track stage held a frame for its detections is a wait (in the latency,
not in the processing; ``waits`` in the figures). Drift compares the p95 latency of the first
and last ``window`` seconds: a pipeline that keeps up does not drift. The stage table printed
with the figures shows each stage's own work, the detector's included, and the waits apart
(:mod:`detstream.stream.pipeline.stage_times`).

Then the reference: the same frames read as a file, every frame detected (``--detect-every
1``), up to the last frame the live run output. A synthetic scene knows its truth: both runs
are scored against it over every frame they output (HOTA, IDF1, MOTA), and the differences
reported. Any source that can be read again (a synthetic scene, a video file) is also scored
for agreement: the live run's tracks against the file run's taken as the truth, both written
as MOTChallenge files. A camera or a stream cannot be read again: only its live figures.

Each case is judged against the issue's targets (:func:`judge`): output FPS at most
:data:`FPS_SHORTFALL` below the source's rate, no growth of latency (:data:`DRIFT_MOST`),
latency p50 and p95 within :data:`LATENCY_P50_MS` and :data:`LATENCY_P95_MS`, and tracking
against the truth at most :data:`SCORE_LOSS_MOST` below file mode (synthetic sources), or the
live tracks' IDF1 against the file run's at least :data:`AGREEMENT_IDF1` (other sources).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from detstream.engines.data.mot import MotWriter, SeqInfo, write_seqinfo
from detstream.engines.errors import UserInputError
from detstream.engines.metrics.mot import evaluate_mot
from detstream.engines.predict import Predictor
from detstream.engines.runtime.base import Backend
from detstream.engines.spec import Detections
from detstream.stream.bench.cameras import paced_and_file
from detstream.stream.bench.common import Log, quiet
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.pipeline.runner import runs_at_camera_rate
from detstream.stream.pipeline.stage_times import stage_table
from detstream.stream.pipeline.threads import inference_plan
from detstream.stream.run_config import RunConfig
from detstream.stream.session import BackendCache, build
from detstream.stream.sinks.base import Sink
from detstream.stream.sinks.truth import TruthScorer

#: The figures ``detstream bench live`` prints for each live run, in order.
PRINTED = ("seconds", "source_fps", "output_fps", "frames_in", "frames_out", "frames_dropped",
           "processing_ms_mean", "latency_ms_p50", "latency_ms_p95",
           "latency_p95_vs_processing", "first_window_p95_ms", "last_window_p95_ms", "drift")

#: The issue's targets. Output FPS at least the source's rate less this (29.5 at 30 fps).
FPS_SHORTFALL = 0.5
#: Capture-to-output latency, ms.
LATENCY_P50_MS, LATENCY_P95_MS = 60.0, 100.0
#: No growth of latency: the last window's p95 at most this much above the first's (+20 %).
DRIFT_MOST = 0.2
#: Tracking against the truth (HOTA, IDF1) at most this much below the file run's.
SCORE_LOSS_MOST = 0.02
#: IDF1 of the live tracks against the file run's, for sources without truth.
AGREEMENT_IDF1 = 0.9

#: Seconds at each end of a live run whose latency p95 are compared (at most a quarter of it).
WINDOW_S = 30.0
#: A synthetic scene ends on its own after its frames; the run's time limit allows this more.
END_GRACE_S = 10.0
#: Longest wait for the frames in flight once a run's time is up.
DRAIN_S = 10.0
#: Engine calls made before a live run, so that its first frames do not pay for a cold model.
WARM_CALLS = 2
#: The tracking scores compared.
SCORES = ("HOTA", "IDF1", "MOTA")


@dataclass(frozen=True)
class Finished:
    """One finished frame: when (``perf_counter`` seconds), its latency and processing ms."""

    done: float
    latency_ms: float
    processing_ms: float


def finished_recorder(done: list[Finished]) -> Callable[[FramePacket], None]:
    """An ``on_packet`` callback that appends each finished packet's figures to ``done``."""
    def record(packet: FramePacket) -> None:
        processing = sum(ms for stage, ms in packet.timings.items() if stage != "capture")
        done.append(Finished(packet.done, (packet.done - packet.captured) * 1000.0,
                             processing))
    return record


def window_drift(done: list[Finished], window: float) -> tuple[float, float, float]:
    """p95 latency of the first and the last ``window`` seconds, and the last's change over
    the first (0.1 = 10 % higher)."""
    start, end = done[0].done, done[-1].done
    first = [d.latency_ms for d in done if d.done - start <= window]
    last = [d.latency_ms for d in done if d.done >= end - window]
    first_p95, last_p95 = float(np.percentile(first, 95)), float(np.percentile(last, 95))
    return first_p95, last_p95, last_p95 / first_p95 - 1.0


class TrackRecorder(Sink):
    """Keeps every output frame's tracks (boxes, scores, classes, ids; no extra arrays such
    as appearance vectors), for the agreement between two runs, and the last frame's index."""

    name = "tracks"
    label = "track recorder"

    def __init__(self) -> None:
        self.frames: list[tuple[int, Detections]] = []
        self.last = -1

    def write(self, packet: FramePacket) -> None:
        self.last = packet.index
        tracks = packet.detections
        if tracks is not None:
            self.frames.append((packet.index, tracks.replace(data={}) if tracks.data
                                else tracks))


@dataclass(frozen=True)
class LiveCase:
    """One measured case.

    Attributes:
        name: what the tables call it.
        config: the live run: source (read live), model, tracker and every other run option.
        reference: the same frames read as a file with every frame detected (``None``: the
            source cannot be read again, such as a camera).
        truth: the source knows its truth (synthetic): both runs are scored against it.
        frames: the synthetic scene's length in frames (``None``: until the source ends or
            the time is up).
    """

    name: str
    config: RunConfig
    reference: RunConfig | None = None
    truth: bool = False
    frames: int | None = None


def source_case(uri: str, config: RunConfig, seconds: float, name: str | None = None
                ) -> LiveCase:
    """The case of ``uri`` under ``config`` (its model and options) for ``seconds``: a
    synthetic scene is paced (``live=1``) and cut to ``seconds`` (its file twin the same
    frames), a video file is played at its frame rate, anything else is live as it is."""
    if uri.startswith("synthetic://"):
        paced, file, frames = paced_and_file(uri, seconds)
        return LiveCase(name or uri, replace(config, source=paced, live=True),
                        replace(config, source=file, live=False, detect_every=1),
                        truth=True, frames=frames)
    if Path(uri).is_file():
        return LiveCase(name or Path(uri).name, replace(config, source=uri, live=True),
                        replace(config, source=uri, live=False, detect_every=1))
    return LiveCase(name or uri, replace(config, source=uri, live=True))


@dataclass
class Run:
    """What one run left: its report, the source's frame rate and size, the model's class
    names, each finished frame's figures (live runs), each frame's tracks and the last
    frame's index, the scores against the truth, and the model as it ran."""

    report: dict
    fps: float
    size: tuple[int, int] | None
    names: tuple[str, ...]
    done: list[Finished]
    tracks: list[tuple[int, Detections]]
    last: int
    scores: dict | None
    describe: str


def warm_up(backend: Backend, calls: int = WARM_CALLS) -> None:
    """A few engine calls on a blank frame (the first calls of a model are slow)."""
    predictor = Predictor(backend)
    blank = np.zeros((480, 640, 3), np.uint8)
    for _ in range(calls):
        predictor([blank])


def _scorer(case: LiveCase, names: tuple[str, ...], frames: int) -> TruthScorer | None:
    """A truth scorer over every frame of the run (the default window keeps the last 3000)."""
    return TruthScorer(names, window=max(1, frames)) if case.truth else None


def run_live(case: LiveCase, seconds: float, backends: BackendCache, log: Log = quiet) -> Run:
    """The live run of ``case``: ``seconds`` (or until the source ends) with tracking,
    drawing and H.264 output, as ``detstream run`` writes them; the frames in flight when the
    time is up are finished (drained).

    Raises:
        StageError: a stage failed.
    """
    # As build() opens it for a live source.
    plan = inference_plan(True, case.config.threads,
                          camera_rate=runs_at_camera_rate(True, case.config.drop,
                                                          case.config.detect_every))
    backend = backends.open(replace(case.config, threads=plan.threads), log)
    warm_up(backend)  # before the source opens: its frames do not wait for a cold model
    done: list[Finished] = []
    tracks = TrackRecorder()
    scorer = _scorer(case, backend.spec.class_names, case.frames or 1)
    with tempfile.TemporaryDirectory(prefix="detstream-live-") as tmp:
        session = build(replace(case.config, output=Path(tmp) / "live.mp4"), log,
                        on_packet=finished_recorder(done),
                        extra_sinks=[tracks, *([scorer] if scorer else [])], backends=backends)
        pipeline = session.pipeline
        try:
            pipeline.start()
            end = time.perf_counter() + seconds + (END_GRACE_S if case.frames else 0.0)
            while not pipeline.wait(0.5) and time.perf_counter() < end:
                pass
            if not pipeline.wait(0):
                pipeline.drain("the benchmark's time is up")
                pipeline.wait(DRAIN_S)
        finally:
            pipeline.close()
    if pipeline.error is not None:
        raise pipeline.error
    if not done:
        raise UserInputError(f"{case.name}: the live run output no frame; check the source")
    source = pipeline.source
    return Run(pipeline.report(), source.fps or 30.0, source.size, backend.spec.class_names,
               done, tracks.frames, tracks.last, scorer.scores() if scorer else None,
               session.describe)


def run_reference(case: LiveCase, frames: int, names: tuple[str, ...],
                  backends: BackendCache, log: Log = quiet) -> Run:
    """The file run of ``case``: its first ``frames`` frames, every frame detected (the
    model's class ``names`` for the truth scorer).

    Raises:
        StageError: a stage failed.
    """
    tracks = TrackRecorder()
    scorer = _scorer(case, names, frames)
    session = build(replace(case.reference, max_frames=frames), log,
                    extra_sinks=[tracks, *([scorer] if scorer else [])], backends=backends)
    report = session.pipeline.run()
    source = session.pipeline.source
    return Run(report, source.fps or 30.0, source.size, names, [], tracks.frames, tracks.last,
               scorer.scores() if scorer else None, session.describe)


def agreement(reference: Run, live: Run, frames: int) -> dict | None:
    """HOTA, IDF1 and MOTA of the live run's tracks scored against the reference run's taken
    as the truth, over its first ``frames`` frames (``None`` when the reference tracked
    nothing: there is nothing to agree with)."""
    with tempfile.TemporaryDirectory(prefix="detstream-agreement-") as tmp:
        gt, pred = Path(tmp) / "gt.txt", Path(tmp) / "pred.txt"
        with MotWriter(gt, ground_truth=True) as truth, MotWriter(pred) as tracks:
            for index, found in reference.tracks:
                truth.write(index + 1, found)
            for index, found in live.tracks:
                if index < frames:
                    tracks.write(index + 1, found)
        width, height = reference.size or (0, 0)
        write_seqinfo(Path(tmp) / "seqinfo.ini",
                      SeqInfo("agreement", reference.fps, frames, width, height))
        try:
            combined, _ = evaluate_mot(gt, pred)
        except UserInputError:  # no track in the reference
            return None
    return {name: round(getattr(combined, name), 4) for name in (*SCORES, "IDSW")}


def tracking_scores(run: Run) -> dict | None:
    """The run's tracking scores against the truth (``None`` without truth or tracks)."""
    tracking = (run.scores or {}).get("tracking")
    if not tracking:
        return None
    return {name: round(tracking[name], 4) for name in (*SCORES, "DetA", "AssA", "IDSW")}


def live_figures(run: Run, window: float = WINDOW_S) -> dict:
    """The live run's figures: :data:`PRINTED`, the pipeline's ``stages``, ``waits`` and
    ``detection``, and the detector's frames a second."""
    done, report = run.done, run.report
    latency = np.array([d.latency_ms for d in done])
    processing = float(np.mean([d.processing_ms for d in done]))
    span = done[-1].done - done[0].done
    first_p95, last_p95, drift = window_drift(done, min(window, span / 4.0) if span else window)
    p95 = float(np.percentile(latency, 95))
    return {
        "seconds": round(span, 1), "source_fps": run.fps, "output_fps": report["fps"],
        "frames_in": report["frames_in"], "frames_out": report["frames_out"],
        "frames_dropped": report["frames_dropped"],
        "processing_ms_mean": round(processing, 2),
        "latency_ms_p50": round(float(np.percentile(latency, 50)), 2),
        "latency_ms_p95": round(p95, 2),
        "latency_p95_vs_processing": round(p95 / processing, 3) if processing else None,
        "first_window_p95_ms": round(first_p95, 2), "last_window_p95_ms": round(last_p95, 2),
        "drift": round(drift, 3),
        "detections_per_s": round(report["detection"]["frames_detected"]
                                  / max(report["seconds"], 1e-9), 2),
        "stages": report["stages"], "waits": report["waits"],
        "detection": report["detection"],
    }


def _target(name: str, value: float | None, wanted: str, met: bool, shown: str = "{:g}"
            ) -> dict:
    """A target: its value (``None``: not measured, so not met), what is wanted, whether it
    is met, and the value as the table shows it (``shown``, a format)."""
    return {"name": name, "value": value, "wanted": wanted, "met": value is not None and met,
            "shown": "-" if value is None else shown.format(value)}


def judge(case: dict) -> list[dict]:
    """The issue's targets for one measured case (see the module doc): each with its value,
    what is wanted, and whether it is met (a value that could not be measured is not)."""
    live = case["live"]
    least = live["source_fps"] - FPS_SHORTFALL
    targets = [
        _target("output FPS", live["output_fps"], f">= {least:g}", live["output_fps"] >= least),
        _target("latency growth (p95, last vs first window)", live["drift"],
                f"<= +{DRIFT_MOST:.0%}", live["drift"] <= DRIFT_MOST, "{:+.1%}"),
        _target("latency p50 ms", live["latency_ms_p50"], f"<= {LATENCY_P50_MS:g}",
                live["latency_ms_p50"] <= LATENCY_P50_MS),
        _target("latency p95 ms", live["latency_ms_p95"], f"<= {LATENCY_P95_MS:g}",
                live["latency_ms_p95"] <= LATENCY_P95_MS),
    ]
    scores = case.get("scores")
    if case["truth"]:
        for name in ("HOTA", "IDF1"):
            change = (scores or {}).get("difference", {}).get(name)
            targets.append(_target(f"{name} against the truth, live - file", change,
                                   f">= -{SCORE_LOSS_MOST:g}",
                                   change is not None and change >= -SCORE_LOSS_MOST, "{:+.3f}"))
    elif case["reference"] is not None:
        idf1 = (case.get("agreement") or {}).get("IDF1")
        targets.append(_target("IDF1 of live tracks against the file run's", idf1,
                               f">= {AGREEMENT_IDF1:g}",
                               idf1 is not None and idf1 >= AGREEMENT_IDF1, "{:.3f}"))
    return targets


def bench_case(case: LiveCase, seconds: float, backends: BackendCache,
               log: Log = quiet) -> dict:
    """One case: its live run, then (when the source can be read again) its file run over
    the same frames; the figures, the scores, their differences and the targets."""
    log(f"{case.name}: live for {seconds:g} s")
    live = run_live(case, seconds, backends, log)
    figures = live_figures(live)
    log(f"{case.name}: {figures['output_fps']} FPS out of {live.fps:g}, latency p50 "
        f"{figures['latency_ms_p50']} p95 {figures['latency_ms_p95']} ms")
    result: dict = {"name": case.name, "source": case.config.source,
                    "model": case.config.model, "tracker": case.config.tracker or "none",
                    "describe": live.describe, "truth": case.truth, "live": figures,
                    "reference": None, "scores": None, "agreement": None}
    if case.reference is not None:
        frames = live.last + 1
        log(f"{case.name}: the same {frames} frames read as a file, every frame detected")
        reference = run_reference(case, frames, live.names, backends, log)
        result["reference"] = {"source": case.reference.source, "frames": frames,
                               "frames_out": reference.report["frames_out"],
                               "fps": reference.report["fps"],
                               "detection": reference.report["detection"]}
        if case.truth:
            own, file = tracking_scores(live), tracking_scores(reference)
            result["scores"] = {
                "live": own, "file": file,
                "difference": ({name: round(own[name] - file[name], 4) for name in SCORES}
                               if own and file else None)}
        result["agreement"] = agreement(reference, live, frames)
    result["targets"] = judge(result)
    result["met"] = all(target["met"] for target in result["targets"])
    return result


def bench_live(cases: list[LiveCase], seconds: float = 120.0, log: Log = quiet) -> dict:
    """Every case in turn (:func:`bench_case`), one model cache for all.

    Returns:
        The figures ``--json`` writes: ``cases`` (each with ``live``, ``reference``,
        ``scores``, ``agreement`` and ``targets``) and ``all_met``.
    """
    backends = BackendCache()
    results = [bench_case(case, seconds, backends, log) for case in cases]
    return {"seconds": seconds, "window": WINDOW_S, "cases": results,
            "all_met": all(result["met"] for result in results)}


def _shown(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_case(result: dict) -> None:
    """One case's figures: the live run, its stage table, the scores against the truth and
    the file run, and the targets."""
    live = result["live"]
    print(f"== {result['name']}: {result['source']}")
    print(f"model {result['model']} ({result['describe']}), tracker {result['tracker']}")
    for key in PRINTED:
        print(f"  {key:<28}{live[key]}")
    if live["frames_dropped"]:
        print(f"  the pipeline was slower than the {live['source_fps']:g} fps source: "
              f"{live['frames_dropped']} frames dropped, newest frames kept")
    else:
        print(f"  the pipeline kept up with the {live['source_fps']:g} fps source")
    late = live["detection"].get("late", {})
    print(f"  {'detector frames a second':<28}{live['detections_per_s']} (late results "
          f"applied {late.get('applied', 0)}, {late.get('frames_late_mean', 0)} frames late "
          f"on average, at most {late.get('frames_late_max', 0)})")
    print(stage_table(live, live=True))
    scores, agreed = result["scores"], result["agreement"]
    if scores is not None:
        own, file, change = scores["live"] or {}, scores["file"] or {}, scores["difference"] or {}
        print(f"  {'against the truth':<18}{'live':>8}{'file':>8}{'live - file':>13}")
        for name in SCORES:
            print(f"  {name:<18}{_shown(own.get(name)):>8}{_shown(file.get(name)):>8}"
                  f"{_shown(change.get(name)):>13}")
    if result["reference"] is not None:
        shown = ("the file run tracked nothing" if agreed is None else
                 ", ".join(f"{name} {agreed[name]:.3f}" for name in SCORES))
        print(f"  live tracks against the file run's ({result['reference']['frames']} frames): "
              f"{shown}")
    print(f"  {'target':<46}{'measured':>10}  {'wanted':<10}")
    for target in result["targets"]:
        print(f"  {target['name']:<46}{target['shown']:>10}  {target['wanted']:<10}"
              f"{'met' if target['met'] else 'NOT MET'}")


def print_live(result: dict) -> None:
    """Every case (:func:`print_case`), then one line per case: met or what was not."""
    for case in result["cases"]:
        print_case(case)
        print()
    print("issue 36 targets:")
    for case in result["cases"]:
        missed = [t["name"] for t in case["targets"] if not t["met"]]
        print(f"  {case['name']}: {'met' if not missed else 'not met: ' + '; '.join(missed)}")
