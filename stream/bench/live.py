"""``detstream bench live``: a paced live source with every output on, for a while.

Latency (capture to finished) is set against the processing time per frame: the sum of its
stage times except capture (which, for a live source, is waiting for the next frame). With
``--detect-every 0`` (the default) the detector works beside the frames' path, so a frame's
processing is its tracking, drawing and output, and the time the track stage held it for its
detections is a wait (in the latency, not in the processing; ``waits`` in the figures). Drift
compares the p95 latency of the first and last ``window`` seconds: a pipeline that keeps up
does not drift. The stage table printed after the figures shows each stage's own work, the
detector's included, and the waits apart (:mod:`detstream.stream.pipeline.stage_times`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detstream.stream.bench.common import BenchModel, Log, quiet
from detstream.stream.draw import Annotator
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.pipeline.runner import Pipeline, PipelineOptions
from detstream.stream.pipeline.threads import inference_threads
from detstream.stream.sinks import VideoSink
from detstream.stream.sources import open_source
from detstream.stream.track import make_tracker

#: The figures ``detstream bench live`` prints, in order.
PRINTED = ("seconds", "source_fps", "output_fps", "frames_in", "frames_out", "frames_dropped",
           "processing_ms_mean", "latency_ms_p50", "latency_ms_p95",
           "latency_p95_vs_processing", "first_window_p95_ms", "last_window_p95_ms", "drift")


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


def run_live(source: str, model: BenchModel, tracker: str | None, seconds: float,
             on_packet: Callable[[FramePacket], None]) -> tuple[dict, float]:
    """Run ``source`` live for ``seconds`` with tracking, drawing and H.264 output (as
    ``detstream run`` writes it), calling ``on_packet`` with each finished frame.

    Returns:
        The pipeline's report and the source's frame rate (30 when unknown).

    Raises:
        StageError: a stage failed.
    """
    predictor = model.predictor(inference_threads())
    src = open_source(source, live=True)  # after the model: no frames pile up while it loads
    fps = src.fps or 30.0
    with tempfile.TemporaryDirectory(prefix="detstream-live-") as tmp:
        sink = VideoSink(Path(tmp) / "live.mp4", fps, tune="zerolatency")  # as `detstream run`
        pipeline = Pipeline(src, predictor, make_tracker(tracker, fps) if tracker else None,
                            Annotator(), [sink], PipelineOptions(), on_packet=on_packet)
        pipeline.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and not pipeline.wait(0.5):
            pass
        pipeline.close()
    if pipeline.error is not None:
        raise pipeline.error
    return pipeline.report(), fps


def window_drift(done: list[Finished], window: float) -> tuple[float, float, float]:
    """p95 latency of the first and the last ``window`` seconds, and the last's change over
    the first (0.1 = 10 % higher)."""
    start, end = done[0].done, done[-1].done
    first = [d.latency_ms for d in done if d.done - start <= window]
    last = [d.latency_ms for d in done if d.done >= end - window]
    first_p95, last_p95 = float(np.percentile(first, 95)), float(np.percentile(last, 95))
    return first_p95, last_p95, last_p95 / first_p95 - 1.0


def bench_live(source: str, model: BenchModel, seconds: float = 120.0,
               tracker: str | None = "botsort", window: float = 30.0,
               log: Log = quiet) -> dict:
    """Run a live source for ``seconds`` with outputs on; report latency against processing
    and the drift between the first and last ``window`` seconds (see the module doc).

    Returns:
        The figures ``--json`` writes (:data:`PRINTED` and the pipeline's ``stages``,
        ``waits`` and ``detection``).
    """
    done: list[Finished] = []
    report, fps = run_live(source, model, tracker, seconds, finished_recorder(done))
    latency = np.array([d.latency_ms for d in done])
    processing = float(np.mean([d.processing_ms for d in done]))
    first_p95, last_p95, drift = window_drift(done, window)
    result = {
        "source": source, "seconds": round(done[-1].done - done[0].done, 1),
        "source_fps": fps, "output_fps": report["fps"],
        "frames_in": report["frames_in"], "frames_out": report["frames_out"],
        "frames_dropped": report["frames_dropped"],
        "processing_ms_mean": round(processing, 2),
        "latency_ms_p50": round(float(np.percentile(latency, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(latency, 95)), 2),
        "latency_p95_vs_processing": round(float(np.percentile(latency, 95)) / processing, 3),
        "first_window_p95_ms": round(first_p95, 2), "last_window_p95_ms": round(last_p95, 2),
        "drift": round(drift, 3),
        "stages": report["stages"],
        "waits": report["waits"],
        "detection": report["detection"],
    }
    log(f"live: {result['output_fps']} FPS out of {fps:g}, latency p95 "
        f"{result['latency_ms_p95']} ms vs processing {result['processing_ms_mean']} ms")
    return result


def print_live(result: dict) -> None:
    """The figures ``detstream bench live`` prints, the stage table, and whether the
    pipeline kept up."""
    from detstream.stream.pipeline.stage_times import stage_table

    for key in PRINTED:
        print(f"{key:<28}{result[key]}")
    print(stage_table(result, live=True))
    if result["frames_dropped"]:
        print(f"the pipeline was slower than the {result['source_fps']:g} fps source: "
              f"{result['frames_dropped']} frames dropped, newest frames kept")
    else:
        print(f"the pipeline kept up with the {result['source_fps']:g} fps source")
