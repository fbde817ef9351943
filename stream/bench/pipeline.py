"""``detstream bench pipeline``: how close the pipelined run comes to what this machine allows.

On the same frames and model, with tracking, drawing and H.264 output:

1. each stage alone (decode, preprocess, inference, post-process + track, draw, encode) in ms
   per frame, wall and CPU time; inference at the thread setting that gives the highest
   ceiling for this machine;
2. the ceiling a perfect pipeline could reach: ``min(1 / slowest stage, cores / sum of all
   stages' CPU time)`` (no stage can go faster than itself alone, and the cores are shared);
   CPU time counts every thread of the process, so work a library does on its own threads
   (libx264's frame threads, onnxruntime's pool) is charged to its stage;
3. a sequential loop doing every stage in turn in one thread (how Ultralytics' predictor runs);
4. our pipeline, with its latency, run as ``detstream run`` runs a file (its inference plan:
   several single-threaded calls at once on the CPU).

Inference alone is timed one call at a time at each thread count, and on the CPU also as
several single-threaded calls at once (one per core), the way the pipeline runs a file; the
best of them is the "inference alone" the pipeline is compared with.

``--replay-ms T`` measures the pipeline as it would run next to a GPU engine: the model's raw
outputs are recorded once, then replayed (:class:`~detstream.engines.runtime.replay.
ReplayBackend`) with a fixed inference time of ``T`` ms, so everything else (decode,
preprocessing, post-processing, tracking, drawing, encoding) decides the frame rate. The
reference is then the CPU-stage ceiling: ``cores / CPU ms per frame of the other stages``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from detstream.engines.data.video import VideoWriter
from detstream.engines.predict import Predictor
from detstream.engines.runtime.replay import RecordingBackend, ReplayBackend
from detstream.engines.runtime.torch_threads import use_torch_threads
from detstream.engines.spec import Detections
from detstream.stream.bench.budget import budgets_for, over_budget
from detstream.stream.bench.common import BenchModel, CpuClock, Log, quiet, timed
from detstream.stream.draw import Annotator
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.pipeline.runner import Pipeline, PipelineOptions
from detstream.stream.pipeline.threads import (
    inference_plan,
    inference_threads,
    single_threaded_opencv,
)
from detstream.stream.sinks import JsonlSink, VideoSink
from detstream.stream.sources import open_source
from detstream.stream.track import Tracker, make_tracker

T = TypeVar("T")

#: The stages timed alone, in the order of the figures.
STAGES = ("decode", "preprocess", "inference", "postprocess_track", "draw", "encode")
#: With ``outputs="jsonl"``: tracking and JSON Lines only, nothing drawn or encoded.
JSONL_STAGES = ("decode", "preprocess", "inference", "postprocess_track", "jsonl")
#: What the pipelines write: ``video`` (drawn, H.264) or ``jsonl`` (JSON Lines only).
OUTPUTS = ("video", "jsonl")


@dataclass
class StageTime:
    """One stage alone: wall ms per frame, and the process's CPU ms per frame (every thread)."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.wall_ms))


@dataclass
class InferenceSetting:
    """Inference alone at one thread count, with idle threads spinning or not, ``workers``
    calls at once (then ``time`` holds the wall time per frame of the whole run: its
    throughput)."""

    threads: int
    spin: bool
    time: StageTime
    workers: int = 1

    def describe(self) -> str:
        calls = f"{self.workers} calls at once, " if self.workers > 1 else ""
        return f"{calls}{self.threads} thread{'s' if self.threads > 1 else ''}" + (
            ", spinning" if self.spin else "")


@dataclass
class StagesAlone:
    """What :func:`time_stages_alone` measured: every stage but inference, each inference
    setting tried, the frame count, the frames' size ``(width, height)`` and the source's
    frame rate."""

    stages: dict[str, StageTime]
    settings: list[InferenceSetting]
    frames: int
    size: tuple[int, int]
    fps: float


def time_each(calls: Iterable[Callable[[], T]], device: torch.device | None = None,
              keep: bool = True) -> tuple[list[T], StageTime]:
    """Call each of ``calls`` in turn: their values, and the stage time (wall ms per call as
    :func:`timed` measures it, and the process's CPU ms per call).

    With ``keep=False`` each value is dropped before the next call, as a pipeline drops a
    frame once it is written: the allocator then reuses its memory. Keeping hundreds of full
    frames makes every call fault in fresh pages instead (at 1920x1080 that tripled the
    measured drawing time), which is not what a running pipeline pays.
    """
    values, stage, count = [], StageTime(), 0
    with CpuClock() as clock:
        for call in calls:
            value, ms = timed(call, device)
            if keep:
                values.append(value)
            del value
            count += 1
            stage.wall_ms.append(ms)
    stage.cpu_ms = clock.ms / max(1, count)
    return values, stage


def decode_alone(source: str, frames: int, decoder: str = "auto"
                 ) -> tuple[list[np.ndarray], StageTime, float]:
    """Decode up to ``frames`` frames of ``source`` (with ``decoder``, see
    :func:`~detstream.stream.sources.open_source`), keeping them for the other stages.

    Returns:
        The BGR images, the decode time, and the source's frame rate (30 when unknown).

    Raises:
        ValueError: no frame could be read.
    """
    # Timed on the second of two passes that drop each frame (see time_each), then kept on a
    # third. A process's first pass also pays for warming the decoder and the allocator: glibc
    # maps every large block afresh until one has been freed, so at 1920x1080 a first pass
    # (or one after hundreds of frames were kept) took 14 ms of CPU a frame where a running
    # pipeline, which frees frames all along, pays 5 to 8.
    for _ in range(2):
        src = open_source(source, live=False, decoder=decoder)
        try:
            _, decode = time_each(src.read for _ in range(frames))
        finally:
            src.close()
    src = open_source(source, live=False, decoder=decoder)
    fps = src.fps or 30.0
    try:
        packets = (src.read() for _ in range(frames))
        images = [packet.image for packet in packets if packet is not None]
    finally:
        src.close()
    if not images:
        raise ValueError(f"no frames could be read from {source}")
    # the end of a short file was timed too: count the frames read
    decode.wall_ms = decode.wall_ms[:len(images)]
    decode.cpu_ms *= frames / len(images)
    return images, decode, fps


def preprocess_alone(predictor: Predictor, images: list[np.ndarray]
                     ) -> tuple[list[tuple], StageTime]:
    """Preprocess each image on its own: the ``(batch, letterboxes)`` pairs and the time."""
    gpu = predictor.backend.device  # GPU stages are timed until the GPU is done
    _, stage = time_each((lambda image=image: predictor.preprocess([image]) for image in images),
                         gpu, keep=False)
    return [predictor.preprocess([image]) for image in images], stage


def inference_alone(model: BenchModel, reference: Predictor, batches: list[tuple],
                    log: Log = quiet) -> tuple[list[InferenceSetting], list]:
    """Inference alone at each thread count (and, on onnxruntime, with its idle threads
    spinning or not), each setting on a backend of its own like ``reference``'s. The ceiling
    later takes the setting that gives the highest one, so it is what the best tuning could
    reach.

    Returns:
        Each setting's time, and the first setting's raw outputs (one per batch).
    """
    cores = os.cpu_count() or 1
    gpu = reference.backend.device
    # On a GPU the thread count only sizes torch's CPU pool: one setting is enough.
    thread_counts = ({inference_threads(cores)} if gpu.type == "cuda"
                     else {1, max(1, cores // 2), cores})
    spins = (False, True) if reference.backend.name == "onnxruntime" else (False,)
    settings: list[InferenceSetting] = []
    raws: list = []
    for threads in sorted(thread_counts):
        for spin in spins:
            candidate = model.open(threads, spin)
            for _ in range(3):
                candidate.infer(batches[0][0])
            outputs, stage = time_each((lambda batch=batch, run=candidate.infer: run(batch)
                                        for batch, _ in batches), gpu)
            settings.append(InferenceSetting(threads, spin, stage))
            raws = raws or outputs
            log(f"inference with {threads} thread(s){', spinning' if spin else ''}: "
                f"{stage.mean_ms:.2f} ms wall, {stage.cpu_ms:.2f} ms CPU")
    if gpu.type != "cuda" and cores > 1:
        plan = inference_plan(live=False, cores=cores)
        stage = concurrent_inference(model.open(plan.threads), [b for b, _ in batches],
                                     plan.workers)
        settings.append(InferenceSetting(plan.threads, False, stage, plan.workers))
        log(f"inference, {plan.workers} calls at once with {plan.threads} thread(s) each: "
            f"{stage.mean_ms:.2f} ms wall per frame, {stage.cpu_ms:.2f} ms CPU")
    return settings, raws


def concurrent_inference(backend, batches: list, workers: int) -> StageTime:
    """Run every batch through ``backend`` from ``workers`` threads at once (the inference
    service's file mode): wall ms per frame of the whole run, and CPU ms per frame."""
    for _ in range(3):
        backend.infer(batches[0])
    queue = list(range(len(batches)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop()
            backend.infer(batches[index])

    threads = [threading.Thread(target=work) for _ in range(workers)]
    with CpuClock() as clock:
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = (time.perf_counter() - start) * 1000.0
    per_frame = wall / len(batches)
    return StageTime([per_frame] * len(batches), clock.ms / len(batches))


def postprocess_track_alone(predictor: Predictor, tracker: Tracker | None,
                            images: list[np.ndarray], raws: list, batches: list[tuple]
                            ) -> tuple[list[Detections], StageTime]:
    """Post-process each raw output and track it: the detections and the time (on one torch
    thread, as the pipeline's track stage runs)."""
    def post(image: np.ndarray, raw: object, boxes: list) -> Detections:
        (dets,) = predictor.postprocess(raw, boxes)
        return tracker.update(dets, image) if tracker is not None else dets

    previous = torch.get_num_threads()
    use_torch_threads(1)
    try:
        return time_each((lambda image=image, raw=raw, boxes=boxes: post(image, raw, boxes)
                          for image, raw, (_, boxes) in zip(images, raws, batches,
                                                            strict=True)),
                         predictor.backend.device)
    finally:
        use_torch_threads(previous)


def draw_alone(images: list[np.ndarray], results: list[Detections]
               ) -> tuple[list[np.ndarray], StageTime]:
    """Draw each frame's detections: the drawn frames and the time."""
    timing, keeping = Annotator(), Annotator()  # the same trails on both passes
    _, stage = time_each((lambda image=image, dets=dets: timing.draw(image, dets)
                          for image, dets in zip(images, results, strict=True)), keep=False)
    return [keeping.draw(image, dets) for image, dets in zip(images, results, strict=True)], stage


def encode_alone(drawn: list[np.ndarray], path: Path, fps: float) -> StageTime:
    """Encode the drawn frames to H.264 at ``path``. The encoder finishes queued frames in
    ``close()``: the last frame's wall time includes it."""
    h, w = drawn[0].shape[:2]
    stage = StageTime()
    with CpuClock() as clock:
        writer = VideoWriter(path, w, h, fps)
        for image in drawn:
            stage.wall_ms.append(timed(lambda image=image: writer.write(image))[1])
        _, close_ms = timed(writer.close)
    stage.cpu_ms = clock.ms / len(drawn)
    stage.wall_ms[-1] += close_ms
    return stage


_NO_IMAGE = np.zeros((1, 1, 3), np.uint8)  # the JSON Lines sink never looks at the image


def jsonl_alone(results: list[Detections], path: Path) -> StageTime:
    """Write each frame's detections as a JSON Lines record to ``path``."""
    sink = JsonlSink(path)
    try:
        _, stage = time_each((lambda k=k, dets=dets: sink.write(
            FramePacket(0, k, k / 30.0, 0.0, _NO_IMAGE, detections=dets)))
            for k, dets in enumerate(results))
    finally:
        sink.close()
    return stage



def time_stages_alone(images: list[np.ndarray], decode: StageTime, fps: float,
                      model: BenchModel, predictor: Predictor, tracker: str | None,
                      folder: Path, log: Log = quiet, outputs: str = "video") -> StagesAlone:
    """Every stage after decoding alone on the decoded ``images`` (see the module doc, step
    1); ``decode`` is their decode time. The outputs (``video``: drawing and H.264;
    ``jsonl``: JSON Lines) are written into ``folder``."""
    batches, preprocess = preprocess_alone(predictor, images)
    settings, raws = inference_alone(model, predictor, batches, log)
    track = make_tracker(tracker, fps) if tracker else None
    results, post = postprocess_track_alone(predictor, track, images, raws, batches)
    del raws, batches
    stages = {"decode": decode, "preprocess": preprocess, "postprocess_track": post}
    if outputs == "jsonl":
        stages["jsonl"] = jsonl_alone(results, folder / "alone.jsonl")
    else:
        drawn, stages["draw"] = draw_alone(images, results)
        del results
        stages["encode"] = encode_alone(drawn, folder / "alone.mp4", fps)
    h, w = images[0].shape[:2]
    return StagesAlone(stages, settings, len(images), (w, h), fps)


def ceiling_fps(wall_ms: dict[str, float], cpu_ms: dict[str, float], cores: int) -> float:
    """The most frames per second a perfect pipeline could give: no stage goes faster than it
    does alone (``wall_ms``, mean per frame), and the stages share ``cores`` (``cpu_ms``)."""
    return min(1000.0 / max(wall_ms.values()), cores * 1000.0 / sum(cpu_ms.values()))


def with_inference(alone: StagesAlone, setting: InferenceSetting) -> dict[str, StageTime]:
    """The stages in :data:`STAGES` (or :data:`JSONL_STAGES`) order, inference at
    ``setting``."""
    stages = {**alone.stages, "inference": setting.time}
    order = JSONL_STAGES if "jsonl" in stages else STAGES
    return {name: stages[name] for name in order}


def best_inference_setting(alone: StagesAlone, cores: int) -> tuple[InferenceSetting, float]:
    """The inference setting with the highest ceiling, and that ceiling."""
    def ceiling(setting: InferenceSetting) -> float:
        stages = with_inference(alone, setting)
        return ceiling_fps({k: s.mean_ms for k, s in stages.items()},
                           {k: s.cpu_ms for k, s in stages.items()}, cores)

    best = max(alone.settings, key=ceiling)
    return best, ceiling(best)


def run_sequential(source: str, frames: int, predictor: Predictor, tracker: str | None,
                   size: tuple[int, int], fps: float, path: Path, outputs: str = "video"
                   ) -> float:
    """Every stage in turn in one thread, frame after frame, into ``path`` (frames of ``size``,
    ``(width, height)``; a video, or JSON Lines with ``outputs="jsonl"``): frames per
    second."""
    track = make_tracker(tracker, fps) if tracker else None
    annotator = Annotator()
    writer = VideoWriter(path, *size, fps) if outputs == "video" else None
    sink = JsonlSink(path) if outputs == "jsonl" else None
    src = open_source(source, live=False)
    start = time.perf_counter()
    for _ in range(frames):
        frame = src.read()
        if frame is None:
            break
        batch, boxes = predictor.preprocess([frame.image])
        (dets,) = predictor.postprocess(predictor.infer(batch), boxes)
        if track is not None:
            dets = track.update(dets, frame.image)
        if writer is not None:
            writer.write(annotator.draw(frame.image, dets))
        else:
            sink.write(FramePacket(0, frame.index, frame.pts, 0.0, frame.image, detections=dets))
    (writer or sink).close()
    rate = frames / (time.perf_counter() - start)
    src.close()
    return rate


def run_pipelined(source: str, frames: int, predictor: Predictor, tracker: str | None,
                  fps: float, path: Path, workers: int = 1, outputs: str = "video") -> dict:
    """Our pipeline on the same work, into ``path`` (a video, or JSON Lines with
    ``outputs="jsonl"``: then nothing is drawn), with ``workers`` inference calls at once:
    its report (``fps``, ``latency_ms``, ``stages``...)."""
    src = open_source(source, live=False)
    video = outputs == "video"
    pipeline = Pipeline(src, predictor, make_tracker(tracker, fps) if tracker else None,
                        Annotator() if video else None,
                        [VideoSink(path, fps) if video else JsonlSink(path)],
                        PipelineOptions(max_frames=frames, overlay=False,
                                        inference_workers=workers))
    return pipeline.run()


def median_run(run: Callable[[], dict], runs: int) -> tuple[dict, list[float]]:
    """``run()`` ``runs`` times: the report of the run with the median FPS (the lower middle
    one for an even count), and every run's FPS in order. On a shared VM one run's FPS moved
    by up to 5% (bikes.mp4, 250 frames, 58.0-62.0 FPS over nine runs of the same code)."""
    reports = [run() for _ in range(max(1, runs))]
    ranked = sorted(reports, key=lambda report: report["fps"])
    return ranked[(len(ranked) - 1) // 2], [report["fps"] for report in reports]


def bench_pipeline(source: str, model: BenchModel, frames: int = 300,
                   tracker: str | None = "botsort", log: Log = quiet,
                   outputs: str = "video", runs: int = 3) -> dict:
    """Measure stages, ceiling, sequential and pipelined throughput (see the module doc); the
    pipeline runs ``runs`` times and its median run is reported.

    Returns:
        The figures ``--json`` writes: ``stage_ms`` and ``stage_cpu_ms`` per stage,
        ``ceiling_fps``, ``sequential_fps``, ``pipelined_fps`` and their ratios, latency, and
        the pipeline's own per-stage figures.
    """
    cores = os.cpu_count() or 1
    single_threaded_opencv()  # every stage is timed as the pipeline runs it
    images, decode, fps = decode_alone(source, frames)
    log(f"{len(images)} frames of {images[0].shape[1]}x{images[0].shape[0]} from {source}")
    # The sequential loop runs inference on every core (nothing else runs meanwhile); the
    # pipeline as `detstream run` does, leaving a core to the other stages. Neither spins:
    # in the sequential loop spinning threads slowed everything after inference.
    sequential_predictor = model.predictor(cores)
    predictor = model.predictor(inference_threads(cores))
    # how `detstream run` runs a file
    plan = inference_plan(live=False, cores=cores, gpu=predictor.backend.device.type != "cpu")
    pipelined_predictor = (predictor if plan.threads == inference_threads(cores)
                           else model.predictor(plan.threads))
    suffix = "mp4" if outputs == "video" else "jsonl"
    with tempfile.TemporaryDirectory(prefix="detstream-bench-") as tmp:
        folder = Path(tmp)
        alone = time_stages_alone(images, decode, fps, model, predictor, tracker, folder, log,
                                  outputs)
        best, ceiling = best_inference_setting(alone, cores)
        stages = with_inference(alone, best)
        means = {name: stage.mean_ms for name, stage in stages.items()}
        cpu_ms = {name: stage.cpu_ms for name, stage in stages.items()}
        log("stages alone (wall): " + ", ".join(f"{k} {v:.2f} ms" for k, v in means.items()))
        log("stages alone (CPU):  " + ", ".join(f"{k} {v:.2f} ms" for k, v in cpu_ms.items()))
        n = alone.frames
        sequential = run_sequential(source, n, sequential_predictor, tracker, alone.size, fps,
                                    folder / f"sequential.{suffix}", outputs)
        log(f"sequential: {sequential:.1f} FPS")
        report, every_run = median_run(
            lambda: run_pipelined(source, n, pipelined_predictor, tracker, fps,
                                  folder / f"pipelined.{suffix}", plan.workers, outputs), runs)
        log("pipelined: " + ", ".join(f"{fps:.1f}" for fps in every_run) + " FPS")
    fastest = min(alone.settings, key=lambda setting: setting.time.mean_ms)
    alone_fps = 1000.0 / fastest.time.mean_ms

    return {
        "source": source, "model": model.model, "outputs": outputs, "frames": n,
        "size": list(alone.size),
        "cores": cores, "inference_threads": best.threads, "inference_spin": best.spin,
        "inference_workers": best.workers,
        "inference_alone_fps": round(alone_fps, 1),
        "inference_alone_setting": fastest.describe(),
        "pipeline_inference_plan": {"threads": plan.threads, "workers": plan.workers},
        "stage_ms": {k: round(v, 3) for k, v in means.items()},
        "stage_cpu_ms": {k: round(v, 3) for k, v in cpu_ms.items()},
        **budget_figures(cpu_ms, *alone.size),
        "inference_only_fps": round(1000.0 / means["inference"], 1),
        "ceiling_fps": round(ceiling, 1),
        "sequential_fps": round(sequential, 1),
        "pipelined_fps": report["fps"],
        "pipelined_fps_runs": every_run,
        "pipelined_vs_sequential": round(report["fps"] / sequential, 3),
        "pipelined_vs_ceiling": round(report["fps"] / ceiling, 3),
        "pipelined_vs_inference_alone": round(report["fps"] / alone_fps, 3),
        "latency_ms_p50": report["latency_ms"]["p50"],
        "latency_ms_p95": report["latency_ms"]["p95"],
        "pipeline_stages": report["stages"],
        "pipeline_waits": report["waits"],  # the track stage's waits for inference, apart
    }


def record_outputs(model: BenchModel, images: list[np.ndarray]
                   ) -> tuple[RecordingBackend, list[tuple], StageTime, list]:
    """Run the real model once on every image, keeping its raw outputs for replay.

    Returns:
        The recorder, each image's ``(batch, letterboxes)``, the preprocessing time and the
        raw outputs.
    """
    recorder = RecordingBackend(model.open(inference_threads()))
    predictor = Predictor(recorder)
    batches, preprocess = preprocess_alone(predictor, images)
    raws = [recorder.infer(batch) for batch, _ in batches]
    return recorder, batches, preprocess, raws


def cpu_stage_ceiling(stages: dict[str, StageTime], replay_ms: float, cores: int) -> float:
    """The most frames per second the stages other than inference allow on ``cores``: none
    faster than alone, all sharing the cores, and inference taking ``replay_ms`` a frame."""
    wall = {name: stage.mean_ms for name, stage in stages.items()}
    cpu = {name: stage.cpu_ms for name, stage in stages.items()}
    return min(ceiling_fps(wall, cpu, cores), 1000.0 / max(replay_ms, 1e-6))


def bench_replay(source: str, model: BenchModel, replay_ms: float, frames: int = 300,
                 tracker: str | None = "botsort", log: Log = quiet, runs: int = 3) -> dict:
    """The pipeline with recorded outputs replayed at ``replay_ms`` per call (see the module
    doc): the other stages alone, their CPU-stage ceiling and the pipelined FPS (the median
    of ``runs`` runs)."""
    cores = os.cpu_count() or 1
    single_threaded_opencv()  # every stage is timed as the pipeline runs it
    images, decode, fps = decode_alone(source, frames)
    h, w = images[0].shape[:2]
    log(f"{len(images)} frames of {w}x{h} from {source}; recording the model's outputs")
    recorder, batches, preprocess, raws = record_outputs(model, images)
    predictor = Predictor(ReplayBackend(recorder, replay_ms))
    track = make_tracker(tracker, fps) if tracker else None
    with tempfile.TemporaryDirectory(prefix="detstream-bench-") as tmp:
        folder = Path(tmp)
        results, post = postprocess_track_alone(predictor, track, images, raws, batches)
        del raws, batches
        drawn, draw = draw_alone(images, results)
        del results
        encode = encode_alone(drawn, folder / "alone.mp4", fps)
        del drawn
        stages = {"decode": decode, "preprocess": preprocess, "postprocess_track": post,
                  "draw": draw, "encode": encode}
        ceiling = cpu_stage_ceiling(stages, replay_ms, cores)
        log(f"CPU-stage ceiling {ceiling:.1f} FPS; running the pipeline with replayed outputs")
        # as `detstream run` runs a file next to a GPU engine: two calls in flight
        report, every_run = median_run(
            lambda: run_pipelined(source, len(images), predictor, tracker, fps,
                                  folder / "pipelined.mp4", workers=2), runs)
    return {
        "source": source, "model": model.model, "frames": len(images), "size": [w, h],
        "cores": cores, "replay_ms": replay_ms,
        "stage_ms": {k: round(v.mean_ms, 3) for k, v in stages.items()},
        "stage_cpu_ms": {k: round(v.cpu_ms, 3) for k, v in stages.items()},
        **budget_figures({k: v.cpu_ms for k, v in stages.items()}, w, h),
        "cpu_stage_ceiling_fps": round(ceiling, 1),
        "pipelined_fps": report["fps"],
        "pipelined_fps_runs": every_run,
        "pipelined_vs_cpu_ceiling": round(report["fps"] / ceiling, 3),
        "latency_ms_p50": report["latency_ms"]["p50"],
        "latency_ms_p95": report["latency_ms"]["p95"],
        "pipeline_stages": report["stages"],
        "pipeline_waits": report["waits"],  # the track stage's waits for inference, apart
    }


def budget_figures(cpu_ms: dict[str, float], width: int, height: int) -> dict:
    """The JSON keys of the stages' CPU budgets (:mod:`detstream.stream.bench.budget`)."""
    return {"stage_budget_cpu_ms": budgets_for(width, height),
            "stages_over_budget": over_budget(cpu_ms, width, height)}


def print_stages(result: dict) -> None:
    """Each stage alone: wall and CPU ms per frame, and the CPU budget where it has one."""
    budgets = result.get("stage_budget_cpu_ms", {})
    print(f"{'stage (alone)':<20}{'wall ms':>10}{'CPU ms':>10}{'budget':>10}   per frame")
    for name, ms in result["stage_ms"].items():
        cpu = result["stage_cpu_ms"][name]
        budget = budgets.get(name)
        verdict = "" if budget is None else ("  over" if cpu > budget else "  within")
        limit = f"{budget:>10.2f}" if budget is not None else f"{'':>10}"
        print(f"{name:<20}{ms:>10.2f}{cpu:>10.2f}{limit}{verdict}")


def runs_in_words(runs: list[float]) -> str:
    """``median of 3 runs: 58.0, 60.4, 61.2 FPS`` (or ``1 run``)."""
    if len(runs) == 1:
        return "1 run"
    return f"median of {len(runs)} runs: " + ", ".join(f"{fps:.1f}" for fps in runs) + " FPS"


def print_replay(result: dict) -> None:
    """The table ``detstream bench pipeline --replay-ms`` prints."""
    w, h = result["size"]
    print(f"{w}x{h}, inference replayed at {result['replay_ms']:g} ms per frame")
    print_stages(result)
    print(f"CPU-stage ceiling  {result['cpu_stage_ceiling_fps']:>8.1f} FPS "
          f"({result['cores']} cores)")
    print(f"pipelined          {result['pipelined_fps']:>8.1f} FPS  "
          f"({result['pipelined_vs_cpu_ceiling']:.2f}x the CPU-stage ceiling; "
          f"{runs_in_words(result['pipelined_fps_runs'])})")
    print(f"latency p50 {result['latency_ms_p50']:.0f} ms, p95 {result['latency_ms_p95']:.0f} ms")


def print_pipeline(result: dict) -> None:
    """The table ``detstream bench pipeline`` prints."""
    print_stages(result)
    spinning = ", spinning" if result["inference_spin"] else ""
    calls = (f"{result['inference_workers']} calls at once, "
             if result.get("inference_workers", 1) > 1 else "")
    print(f"inference only     {result['inference_only_fps']:>8.1f} FPS "
          f"({calls}{result['inference_threads']} threads{spinning}: the ceiling's setting)")
    print(f"inference alone    {result['inference_alone_fps']:>8.1f} FPS "
          f"({result['inference_alone_setting']}: the fastest)")
    print(f"ceiling            {result['ceiling_fps']:>8.1f} FPS")
    print(f"sequential         {result['sequential_fps']:>8.1f} FPS")
    print(f"pipelined          {result['pipelined_fps']:>8.1f} FPS  "
          f"({result['pipelined_vs_sequential']:.2f}x sequential, "
          f"{result['pipelined_vs_ceiling']:.2f}x ceiling, "
          f"{result['pipelined_vs_inference_alone']:.2f}x inference alone; "
          f"{runs_in_words(result['pipelined_fps_runs'])})")
    print(f"latency p50 {result['latency_ms_p50']:.0f} ms, p95 {result['latency_ms_p95']:.0f} ms")
