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
4. our pipeline, with its latency.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from detstream.engines.data.video import VideoWriter
from detstream.engines.predict import Predictor
from detstream.engines.runtime.select import open_backend
from detstream.stream.draw import Annotator
from detstream.stream.pipeline.runner import Pipeline, PipelineOptions
from detstream.stream.pipeline.threads import inference_threads
from detstream.stream.sinks import VideoSink
from detstream.stream.sources import open_source
from detstream.stream.track import make_tracker

Log = Callable[[str], None]


def _timed(fn: Callable[[], object], device: torch.device | None = None
           ) -> tuple[object, float]:
    """``fn()`` and its wall time in ms. On a CUDA ``device`` the time runs until the GPU has
    finished the work ``fn`` queued (CUDA calls return once the work is queued)."""
    start = time.perf_counter()
    value = fn()
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return value, (time.perf_counter() - start) * 1000.0


class _CpuClock:
    """CPU time of the whole process (every thread) over a block, in ms (``ms``).

    Wall time alone under-counts stages that hand work to their own threads: libx264 encodes
    on its frame threads after ``write`` returns, and onnxruntime's pool spins between calls.
    The ceiling's core budget needs what each stage really costs the machine.
    """

    ms = 0.0

    def __enter__(self) -> _CpuClock:
        self._start = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ms = (time.process_time() - self._start) * 1000.0


def bench_pipeline(source: str, model: str = "default", imgsz: int | None = None,
                   frames: int = 300, backend: str = "auto", tracker: str = "botsort",
                   names: str | None = None, cuda_graph: bool = False,
                   weights: str | Path | None = None, log: Log | None = None) -> dict:
    """Measure stages, ceiling, sequential and pipelined throughput (see the module doc).

    ``cuda_graph`` replays the model from CUDA graphs (CUDA backends only)."""
    log = log or (lambda message: None)
    cores = os.cpu_count() or 1

    # 1a. decode alone, keeping the frames for the other stages.
    src = open_source(source, live=False)
    fps = src.fps or 30.0
    images, decode_ms = [], []
    with _CpuClock() as decode_cpu:
        for _ in range(frames):
            frame, ms = _timed(src.read)
            if frame is None:
                break
            images.append(frame.image)
            decode_ms.append(ms)
        src.close()
    n = len(images)
    if n == 0:
        raise ValueError(f"no frames could be read from {source}")
    cpu_ms = {"decode": decode_cpu.ms / n}
    log(f"{n} frames of {images[0].shape[1]}x{images[0].shape[0]} from {source}")

    # The sequential loop runs inference on every core (nothing else runs meanwhile); the
    # pipeline as `detstream run` does, leaving a core to the other stages. Neither spins:
    # in the sequential loop spinning threads slowed everything after inference.
    sequential_predictor = Predictor(open_backend(model, backend, imgsz=imgsz, names=names,
                                                  threads=cores, cuda_graph=cuda_graph,
                                       weights=weights))
    predictor = Predictor(open_backend(model, backend, imgsz=imgsz, names=names,
                                       threads=inference_threads(cores), cuda_graph=cuda_graph,
                                       weights=weights))
    gpu = predictor.backend.device  # GPU stages are timed until the GPU is done
    stage_ms: dict[str, list[float]] = {"decode": decode_ms}
    batches = []
    with _CpuClock() as clock:
        for image in images:
            value, ms = _timed(lambda image=image: predictor.preprocess([image]), gpu)
            batches.append(value)
            stage_ms.setdefault("preprocess", []).append(ms)
    cpu_ms["preprocess"] = clock.ms / n
    stage_ms["inference"], cpu_ms["inference"] = [], 0.0  # filled in once a setting is chosen

    # 1b. inference alone at each thread count (and, on onnxruntime, with its idle threads
    # spinning or not). Each setting's wall and CPU time are kept; the ceiling below takes
    # the setting that gives the highest one, so it is what the best tuning could reach.
    settings: list[tuple[int, bool, list[float], float]] = []
    raws: list = []
    # On a GPU the thread count only sizes torch's CPU pool: one setting is enough.
    thread_counts = ({inference_threads(cores)} if gpu.type == "cuda"
                     else {1, max(1, cores // 2), cores})
    for threads in sorted(thread_counts):
        for spin in (False, True) if predictor.backend.name == "onnxruntime" else (False,):
            candidate = open_backend(model, backend, imgsz=imgsz, names=names, threads=threads,
                                     spin=spin, cuda_graph=cuda_graph,
                                       weights=weights)
            for _ in range(3):
                candidate.infer(batches[0][0])
            walls, outputs = [], []
            with _CpuClock() as clock:
                for batch, _ in batches:
                    value, ms = _timed(lambda batch=batch, run=candidate.infer: run(batch), gpu)
                    outputs.append(value)
                    walls.append(ms)
            settings.append((threads, spin, walls, clock.ms / n))
            raws = raws or outputs
            log(f"inference with {threads} thread(s){', spinning' if spin else ''}: "
                f"{np.mean(walls):.2f} ms wall, {clock.ms / n:.2f} ms CPU")
    track = make_tracker(tracker, fps) if tracker else None
    results = []
    with _CpuClock() as clock:
        for image, raw, (_, boxes) in zip(images, raws, batches, strict=True):
            def post(image=image, raw=raw, boxes=boxes):
                (dets,) = predictor.postprocess(raw, boxes)
                return track.update(dets, image) if track is not None else dets
            value, ms = _timed(post, gpu)
            results.append(value)
            stage_ms.setdefault("postprocess_track", []).append(ms)
    cpu_ms["postprocess_track"] = clock.ms / n
    del raws, batches
    annotator = Annotator()
    drawn = []
    with _CpuClock() as clock:
        for image, dets in zip(images, results, strict=True):
            value, ms = _timed(lambda image=image, dets=dets: annotator.draw(image, dets))
            drawn.append(value)
            stage_ms.setdefault("draw", []).append(ms)
    cpu_ms["draw"] = clock.ms / n
    with tempfile.TemporaryDirectory(prefix="detstream-bench-") as tmp:
        h, w = drawn[0].shape[:2]
        with _CpuClock() as clock:
            writer = VideoWriter(Path(tmp) / "alone.mp4", w, h, fps)
            for image in drawn:
                stage_ms.setdefault("encode", []).append(_timed(lambda image=image:
                                                                writer.write(image))[1])
            _, close_ms = _timed(writer.close)
        cpu_ms["encode"] = clock.ms / n
        # The encoder finishes queued frames in close(): its wall time per frame includes it.
        stage_ms["encode"][-1] += close_ms
        del drawn

        def ceiling_with(setting: tuple[int, bool, list[float], float]) -> float:
            walls = [float(np.mean(v)) for v in stage_ms.values() if v] + [np.mean(setting[2])]
            total_cpu = sum(cpu_ms.values()) + setting[3]  # inference's entry is still 0
            return min(1000.0 / max(walls), cores * 1000.0 / total_cpu)

        best = max(settings, key=ceiling_with)
        ceiling = ceiling_with(best)
        threads, spin, stage_ms["inference"], cpu_ms["inference"] = best
        means = {name: float(np.mean(values)) for name, values in stage_ms.items()}
        log("stages alone (wall): " + ", ".join(f"{k} {v:.2f} ms" for k, v in means.items()))
        log("stages alone (CPU):  " + ", ".join(f"{k} {v:.2f} ms" for k, v in cpu_ms.items()))

        # 3. sequential: everything in one thread, frame after frame.
        track = make_tracker(tracker, fps) if tracker else None
        annotator = Annotator()
        writer = VideoWriter(Path(tmp) / "sequential.mp4", w, h, fps)
        src = open_source(source, live=False)
        start = time.perf_counter()
        for _ in range(n):
            frame = src.read()
            if frame is None:
                break
            batch, boxes = sequential_predictor.preprocess([frame.image])
            (dets,) = sequential_predictor.postprocess(sequential_predictor.infer(batch), boxes)
            if track is not None:
                dets = track.update(dets, frame.image)
            writer.write(annotator.draw(frame.image, dets))
        writer.close()
        sequential = n / (time.perf_counter() - start)
        src.close()
        log(f"sequential: {sequential:.1f} FPS")

        # 4. our pipeline, same work.
        src = open_source(source, live=False)
        pipeline = Pipeline(src, predictor, make_tracker(tracker, fps) if tracker else None,
                            Annotator(), [VideoSink(Path(tmp) / "pipelined.mp4", fps)],
                            PipelineOptions(max_frames=n, overlay=False))
        report = pipeline.run()
        log(f"pipelined: {report['fps']:.1f} FPS")

    return {
        "source": source, "model": model, "frames": n, "cores": cores,
        "inference_threads": threads, "inference_spin": spin,
        "stage_ms": {k: round(v, 3) for k, v in means.items()},
        "stage_cpu_ms": {k: round(v, 3) for k, v in cpu_ms.items()},
        "inference_only_fps": round(1000.0 / means["inference"], 1),
        "ceiling_fps": round(ceiling, 1),
        "sequential_fps": round(sequential, 1),
        "pipelined_fps": report["fps"],
        "pipelined_vs_sequential": round(report["fps"] / sequential, 3),
        "pipelined_vs_ceiling": round(report["fps"] / ceiling, 3),
        "latency_ms_p50": report["latency_ms"]["p50"],
        "latency_ms_p95": report["latency_ms"]["p95"],
        "pipeline_stages": report["stages"],
    }


def bench_live(source: str, model: str = "default", seconds: float = 120.0,
               imgsz: int | None = None, backend: str = "auto", tracker: str = "botsort",
               names: str | None = None, window: float = 30.0, cuda_graph: bool = False,
               weights: str | Path | None = None, log: Log | None = None) -> dict:
    """Run a live source for ``seconds`` with outputs on; report latency against processing.

    Processing time per frame is the sum of its stage times except capture (which, for a live
    source, is waiting for the next frame). Drift compares the p95 latency of the first and
    last ``window`` seconds.
    """
    log = log or (lambda message: None)
    predictor = Predictor(open_backend(model, backend, imgsz=imgsz, names=names,
                                       threads=inference_threads(), cuda_graph=cuda_graph,
                                       weights=weights))
    src = open_source(source, live=True)  # after the model: no frames pile up while it loads
    fps = src.fps or 30.0
    done: list[tuple[float, float, float]] = []  # (finished, latency ms, processing ms)

    def record(packet) -> None:
        processing = sum(ms for stage, ms in packet.timings.items() if stage != "capture")
        done.append((packet.done, (packet.done - packet.captured) * 1000.0, processing))

    with tempfile.TemporaryDirectory(prefix="detstream-live-") as tmp:
        sink = VideoSink(Path(tmp) / "live.mp4", fps, tune="zerolatency")  # as `detstream run`
        pipeline = Pipeline(src, predictor, make_tracker(tracker, fps) if tracker else None,
                            Annotator(), [sink], PipelineOptions(), on_packet=record)
        pipeline.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and not pipeline.wait(0.5):
            pass
        pipeline.close()
    if pipeline.error is not None:
        raise pipeline.error
    report = pipeline.report()
    start = done[0][0]
    latency = np.array([d[1] for d in done])
    processing = float(np.mean([d[2] for d in done]))
    first = [d[1] for d in done if d[0] - start <= window]
    last = [d[1] for d in done if d[0] >= done[-1][0] - window]
    first_p95, last_p95 = float(np.percentile(first, 95)), float(np.percentile(last, 95))
    result = {
        "source": source, "seconds": round(done[-1][0] - start, 1),
        "source_fps": fps, "output_fps": report["fps"],
        "frames_in": report["frames_in"], "frames_out": report["frames_out"],
        "frames_dropped": report["frames_dropped"],
        "processing_ms_mean": round(processing, 2),
        "latency_ms_p50": round(float(np.percentile(latency, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(latency, 95)), 2),
        "latency_p95_vs_processing": round(float(np.percentile(latency, 95)) / processing, 3),
        "first_window_p95_ms": round(first_p95, 2), "last_window_p95_ms": round(last_p95, 2),
        "drift": round(last_p95 / first_p95 - 1.0, 3),
        "stages": report["stages"],
    }
    log(f"live: {result['output_fps']} FPS out of {fps:g}, latency p95 "
        f"{result['latency_ms_p95']} ms vs processing {result['processing_ms_mean']} ms")
    return result
