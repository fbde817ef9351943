"""``detstream bench multistream``: one batched multi-stream process against N separate
single-stream processes, on the same machine at the same time.

Both sides are real ``detstream run`` processes on the same source, with tracking and JSON
Lines output (``--output-video`` adds H.264 output to every stream). The batched side runs
``detstream run --source URI`` N times over in one process: one model, one inference service
that batches the streams' frames. The separate side starts N ``detstream run --source URI``
processes at once, each with its own model and threads, as a user without multi-stream
support would. Each side's aggregate FPS is its frames out over its processing time (from
the run statistics: model loading is left out of both).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from detstream.stream.bench.common import BenchModel, Log, quiet


def _model_args(model: BenchModel) -> list[str]:
    args = ["--model", str(model.model), "--backend", model.backend]
    if model.imgsz:
        args += ["--imgsz", str(model.imgsz)]
    if model.names:
        args += ["--names", str(model.names)]
    if model.weights:
        args += ["--weights", str(model.weights)]
    if model.cuda_graph:
        args.append("--cuda-graph")
    return args


def _run_args(model: BenchModel, frames: int, tracker: str | None, folder: Path,
              name: str, video: bool) -> list[str]:
    args = [*_model_args(model), "--max-frames", str(frames), "--no-live",
            "--tracker", tracker or "none",
            "--save-json", str(folder / f"{name}.jsonl"),
            "--stats-json", str(folder / f"{name}.json")]
    if video:
        args += ["--output", str(folder / f"{name}.mp4")]
    return args


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "detstream", "run", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, what: str) -> None:
    _, errors = process.communicate()
    if process.returncode != 0:
        last = errors.strip().splitlines()[-1] if errors.strip() else "no message"
        raise RuntimeError(f"{what} failed (exit {process.returncode}): {last}")


def run_batched(source: str, streams: int, model: BenchModel, frames: int,
                tracker: str | None, folder: Path, video: bool = False) -> dict:
    """One process, ``streams`` sources: returns its run statistics (``streams`` inside)."""
    sources = [arg for _ in range(streams) for arg in ("--source", source)]
    name = "batched_{stream}"
    args = _run_args(model, frames, tracker, folder, name, video)
    args[args.index("--stats-json") + 1] = str(folder / "batched.json")
    _finish(_start([*sources, *args]), "the batched run")
    return json.loads((folder / "batched.json").read_text())


def run_separate(source: str, streams: int, model: BenchModel, frames: int,
                 tracker: str | None, folder: Path, video: bool = False) -> list[dict]:
    """``streams`` single-stream processes started together: their run statistics."""
    processes = [_start(["--source", source,
                         *_run_args(model, frames, tracker, folder, f"separate_{i}", video)])
                 for i in range(streams)]
    for i, process in enumerate(processes):
        _finish(process, f"separate run {i}")
    return [json.loads((folder / f"separate_{i}.json").read_text()) for i in range(streams)]


def aggregate_fps(reports: list[dict]) -> float:
    """Frames out of processes that ran side by side, over the longest one's processing
    time (they start together; model loading is not counted)."""
    seconds = max(report["seconds"] for report in reports)
    return sum(report["frames_out"] for report in reports) / max(seconds, 1e-9)


def bench_multistream(source: str, streams: int = 4, model: BenchModel | None = None,
                      frames: int = 300, tracker: str | None = "botsort", video: bool = False,
                      log: Log = quiet) -> dict:
    """Batched against separate processes; the figures as a JSON-able dict."""
    model = model or BenchModel()
    with tempfile.TemporaryDirectory(prefix="detstream-multistream-") as tmp:
        folder = Path(tmp)
        log(f"batched: one process, {streams} streams of {frames} frames")
        start = time.perf_counter()
        batched = run_batched(source, streams, model, frames, tracker, folder, video)
        batched_wall = time.perf_counter() - start
        log(f"separate: {streams} processes of {frames} frames at once")
        start = time.perf_counter()
        separate = run_separate(source, streams, model, frames, tracker, folder, video)
        separate_wall = time.perf_counter() - start
    batched_fps = batched["frames_out"] / max(batched["seconds"], 1e-9)
    separate_fps = aggregate_fps(separate)
    return {
        "source": source, "streams": streams, "frames_per_stream": frames,
        "model": model.model, "tracker": tracker or "none", "video_output": video,
        "batched_fps": round(batched_fps, 2),
        "separate_fps": round(separate_fps, 2),
        "speedup_vs_separate": round(batched_fps / max(separate_fps, 1e-9), 3),
        "batched_inference": batched["inference"],
        "batched_latency_p95_ms": [s["latency_ms"]["p95"] for s in batched["streams"]],
        "separate_latency_p95_ms": [r["latency_ms"]["p95"] for r in separate],
        "batched_wall_s": round(batched_wall, 2), "separate_wall_s": round(separate_wall, 2),
    }


def run_in_process(source: str, streams: int, model: BenchModel, frames: int,
                   tracker: str | None, folder: Path) -> dict:
    """``streams`` copies of ``source`` through one :class:`MultiSession` in this process
    (the model on ``model.backend``, batches up to ``streams``): its report."""
    from detstream.stream.multisession import MultiSession
    from detstream.stream.session import RunConfig

    config = RunConfig(**model.run_options(), tracker=tracker, max_frames=frames, live=False,
                       save_json=folder / "in_process_{stream}.jsonl")
    group = MultiSession(config, [source] * streams)
    group.start()
    group.wait()
    return group.close()


def engine_only_fps(backend, batch: int, seconds: float = 3.0) -> float:
    """Frames per second of the engine alone at ``batch`` (preprocessed zeros in, raw out; on
    a GPU timed until the GPU is done)."""
    from detstream.stream.bench.common import median_ms

    h, w = backend.spec.input_size
    inputs = torch.zeros(batch, 3, h, w, dtype=backend.dtype, device=backend.device)
    device = backend.device if backend.device.type == "cuda" else None
    one = median_ms(lambda: backend.infer(inputs), device, runs=3, warmup=3)
    runs = max(5, int(seconds * 1000 / max(one, 1e-3)))
    return batch * 1000.0 / median_ms(lambda: backend.infer(inputs), device, runs=runs,
                                      warmup=0)


def multistream_vs_engine(source: str, streams: int, model: BenchModel, frames: int = 300,
                          tracker: str | None = "botsort") -> dict:
    """End to end with ``streams`` streams in one process, against the engine alone at the
    same batch: ``aggregate_fps``, ``engine_only_fps`` and their ratio."""
    with tempfile.TemporaryDirectory(prefix="detstream-multistream-") as tmp:
        report = run_in_process(source, streams, model, frames, tracker, Path(tmp))
    from detstream.engines.runtime.select import open_backend

    backend = open_backend(model.model, model.backend, imgsz=model.imgsz, names=model.names,
                           max_batch=streams, cuda_graph=model.cuda_graph,
                           weights=model.weights)
    try:
        engine = engine_only_fps(backend, streams)
    finally:
        backend.close()
    return {"streams": streams, "frames_per_stream": frames, "model": model.model,
            "backend": model.backend, "imgsz": model.imgsz,
            "aggregate_fps": report["fps"], "engine_only_fps": round(engine, 1),
            "end_to_end_vs_engine": round(report["fps"] / max(engine, 1e-9), 3),
            "inference": report["inference"],
            "latency_p95_ms": [s["latency_ms"]["p95"] for s in report["streams"]]}


def print_multistream(result: dict) -> None:
    calls = result["batched_inference"]
    print(f"{result['streams']} streams of {result['frames_per_stream']} frames, "
          f"{result['model']}, tracker {result['tracker']}"
          f"{', H.264 output' if result['video_output'] else ''}")
    print(f"  one batched process   {result['batched_fps']:8.1f} FPS in all "
          f"({calls['mean_batch']:.2f} frames per engine call, {calls['workers']} workers)")
    print(f"  {result['streams']} separate processes {result['separate_fps']:8.1f} FPS in all")
    print(f"  speedup {result['speedup_vs_separate']:.2f}x")
