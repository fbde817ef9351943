"""GPU check: every figure one short run on an NVIDIA GPU can give. Run it through
scripts/gpu_check.sh.

In order, quickest first, each step on its own (one that fails is recorded and the rest go on):

1. GPU preprocessing against the CPU path: the inputs must agree to rounding (1 level of 255);
   the detections on each are compared and recorded; time per 1280x720 frame;
2. torch on CUDA, FP32 and FP16, per input size at batch 1 and 8 (one model per size), with
   FP16 parity against FP32 after NMS;
3. torch with CUDA graphs (FP16), captured when the model opens;
4. onnxruntime's CUDA provider, where onnxruntime has one;
5. the whole pipeline on a video (needs PyAV), 8 and 16 batched streams in one process, and
   1080p decoding on the CPU against NVDEC;
6. TensorRT FP16, where TensorRT is installed: one engine per input size with a 1-8 batch
   profile (the slow part: a build takes a minute or more), batch 1 and 8 timed on it, with
   and without CUDA graphs, and parity against torch FP32.

The figures go to ``$OUT/gpu_check.json`` (or ``./gpu-check/``), rewritten after every step,
so a run cut short keeps what it measured. What could not run is recorded as
``"not tested (why)"`` and named in the last line; "passed" covers only what ran. Exit status:
0 when everything that ran passed, 1 when a parity check failed or a step broke, 2 when there
is no CUDA device (nothing measured), 3 with ``--require-tensorrt`` when TensorRT was not tested.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from detstream.engines.export.parity import compare_detections, sample_frames
from detstream.engines.process.preprocess import Preprocessor
from detstream.engines.runtime.availability import backend_statuses, gpus
from detstream.engines.runtime.select import open_backend
from detstream.stream.bench.common import median_ms
from detstream.stream.bench.engine import time_batches

NO_DEVICE = "no CUDA device: nothing measured"
ROOT = Path(__file__).resolve().parents[1]


class Report:
    """The check's figures as JSON, rewritten (atomically) after every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = {}

    def __setitem__(self, key: str, value: object) -> None:
        self.data[key] = value
        self.save()

    def __getitem__(self, key: str) -> object:
        return self.data[key]

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def say(message: str) -> None:
    print(message, flush=True)


def nvidia_smi() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nvidia-smi unavailable ({exc})"


def environment() -> dict:
    statuses = backend_statuses()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "cpu_cores": os.cpu_count(),
        # torch's default: cuDNN convolutions in "FP32" may use TF32 on Ampere and later.
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "gpus": [g.__dict__ for g in gpus()], "nvidia_smi": nvidia_smi(),
        "backends": {s.name: ("usable: " if s.usable else "not usable: ") + s.detail
                     for s in statuses},
    }


def timed_rows(backend, frames, batches: tuple[int, ...], seconds: float, label: str
               ) -> list[dict]:
    """``bench engine``'s rows for each batch size, each marked with ``label``."""
    rows = []
    for timing in time_batches(backend, frames, batches, seconds):
        rows.append({**timing.to_dict(), "variant": label})
        say(f"  {label:<22} {timing.imgsz:>4} batch {timing.batch}: {timing.ms:8.3f} ms "
            f"(p95 {timing.p95_ms:.3f})  {timing.fps:9.1f} FPS")
    return rows


def raw_output(backend, frames) -> torch.Tensor:
    """The backend's raw output for ``frames`` as one batch, preprocessed on the GPU."""
    batch, _ = Preprocessor(backend.spec, backend.device, backend.dtype)(frames)
    out = backend.infer(batch).float()
    torch.cuda.synchronize()
    return out


def parity(name: str, reference: torch.Tensor, other: torch.Tensor, spec, frames: int,
           parities: dict) -> dict:
    report = compare_detections(reference, other, spec, frames)
    parities[name] = report.passed
    say(f"  {name}: {report.summary()}")
    return report.__dict__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="320,640", help="input sizes (comma-separated)")
    parser.add_argument("--seconds", type=float, default=1.5, help="timing per figure")
    parser.add_argument("--video", default=str(ROOT.parent / "shared/data/videos/bikes.mp4"),
                        help="video for the pipeline figures (a rendered one if missing)")
    parser.add_argument("--frames", type=int, default=250, help="pipeline frames")
    parser.add_argument("--require-tensorrt", action="store_true",
                        help="exit 3 when TensorRT could not be tested")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    out = Path(os.environ.get("OUT") or "gpu-check")
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out / "gpu_check.json")
    report["environment"] = environment()
    say(json.dumps(report["environment"], indent=2))
    if not torch.cuda.is_available():
        report["result"] = NO_DEVICE
        say(NO_DEVICE)
        return 2

    started = time.perf_counter()
    parities: dict[str, bool] = {}
    errors: dict[str, str] = {}
    not_tested: dict[str, str] = {}
    frames = sample_frames(8)  # 640x360
    hd = sample_frames(4, 1280, 720)
    references: dict[int, tuple] = {}  # size -> (torch FP32 backend, its raw output)

    def reference(size: int):
        if size not in references:
            ref = open_backend("default", "torch", "cuda", imgsz=size, half=False, max_batch=8)
            references[size] = (ref, raw_output(ref, frames))
        return references[size]

    def step(name: str, fn: Callable[[], object]) -> None:
        say(f"== {name} ({time.perf_counter() - started:.0f} s in)")
        try:
            report[name] = fn()
        except Exception as exc:  # one broken step must not cost the others' figures
            errors[name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            traceback.print_exc()
            report[name] = {"error": errors[name]}
        report["elapsed_s"] = round(time.perf_counter() - started, 1)

    def preprocess() -> dict:
        ref, _ = reference(sizes[-1])
        result = {}
        for label, images in (("640x360", frames), ("1280x720", hd)):
            cpu = Preprocessor(ref.spec, "cpu", torch.float32)
            gpu = Preprocessor(ref.spec, "cuda", torch.float32)
            a, _ = cpu(images)
            b, _ = gpu(images)
            levels = (a.cuda() - b).abs() / gpu._a  # back to 0-255 pixel levels
            # The inputs must agree to rounding (1 level). What that rounding does to the
            # detections is recorded, not judged: this small model moves scores by a few
            # hundredths for a 1-level change (seen on an H200 at 1280x720 -> 640).
            worst = float(levels.max())
            parities[f"gpu-preprocess {label}"] = worst <= 1.0 + 1e-3
            say(f"  gpu-preprocess {label}: input differs by at most {worst:g} levels "
                f"(limit 1) - {'ok' if worst <= 1.0 + 1e-3 else 'FAILED'}")
            detections = compare_detections(ref.infer(a.cuda()).float(), ref.infer(b).float(),
                                            ref.spec, len(images))
            summary = detections.summary().rsplit(" - ", 1)[0]  # recorded, not judged
            say(f"    detections on the CPU input vs the GPU input: {summary}")
            result[label] = {"max_level_diff": round(worst, 3),
                             "mean_level_diff": round(float(levels.mean()), 4),
                             "detections": detections.__dict__}
        frame = hd[0]
        cpu = Preprocessor(ref.spec, "cpu", torch.float16)
        gpu = Preprocessor(ref.spec, "cuda", torch.float16)
        cuda = torch.device("cuda")
        result["ms_per_1280x720_frame"] = {"cpu": median_ms(lambda: cpu([frame]), cuda),
                                           "gpu": median_ms(lambda: gpu([frame]), cuda)}
        say(f"  preprocess 1280x720 -> {ref.spec.input_size[0]}: "
            f"{result['ms_per_1280x720_frame']}")
        return result

    def torch_cuda() -> dict:
        result: dict = {"timing": [], "parity": {}}
        for size in sizes:
            ref, ref_raw = reference(size)
            result["timing"] += timed_rows(ref, frames, (1, 8), args.seconds, "torch-fp32")
            fp16 = open_backend("default", "torch", "cuda", imgsz=size, half=True, max_batch=8)
            result["timing"] += timed_rows(fp16, frames, (1, 8), args.seconds, "torch-fp16")
            result["parity"][str(size)] = parity(f"torch-fp16 {size}", ref_raw,
                                                 raw_output(fp16, frames), fp16.spec,
                                                 len(frames), parities)
        return result

    def torch_graphs() -> dict:
        result: dict = {"timing": [], "parity": {}, "open_seconds": {}}
        for size in sizes:
            ref, ref_raw = reference(size)
            start = time.perf_counter()
            graphs = open_backend("default", "torch", "cuda", imgsz=size, half=True,
                                  max_batch=8, cuda_graph=True, log=say)
            result["open_seconds"][str(size)] = round(time.perf_counter() - start, 2)
            if not graphs.graph_sizes:
                raise RuntimeError(f"CUDA graph capture failed: {graphs.graph_error}")
            result["captured_batches"] = graphs.graph_sizes
            result["timing"] += timed_rows(graphs, frames, (1, 8), args.seconds,
                                           "torch-fp16-cudagraph")
            result["parity"][str(size)] = parity(f"torch-fp16-cudagraph {size}", ref_raw,
                                                 raw_output(graphs, frames), graphs.spec,
                                                 len(frames), parities)
        return result

    def onnxruntime_cuda() -> dict:
        result: dict = {"timing": [], "parity": {}}
        for size in sizes:
            ref, ref_raw = reference(size)
            ort = open_backend("default", "onnxruntime", "cuda", imgsz=size, half=True,
                               max_batch=8, log=say)
            result["timing"] += timed_rows(ort, frames, (1, 8), args.seconds,
                                           "onnxruntime-cuda-fp16")
            result["parity"][str(size)] = parity(f"onnxruntime-cuda {size}", ref_raw,
                                                 raw_output(ort, frames), ort.spec,
                                                 len(frames), parities)
        return result

    def pipeline(cuda_graph: bool) -> Callable[[], dict]:
        def run() -> dict:
            from detstream.stream.bench.common import BenchModel
            from detstream.stream.bench.pipeline import bench_pipeline

            video = Path(args.video)
            source = str(video) if video.is_file() else \
                "synthetic://?seed=0&size=1280x720&frames=300"
            model = BenchModel("default", "torch", cuda_graph=cuda_graph)
            figures = bench_pipeline(source, model, frames=args.frames,
                                     log=lambda m: say("  " + m))
            say(f"  pipeline on {Path(source).name}: {figures['pipelined_fps']} FPS pipelined, "
                f"{figures['sequential_fps']} sequential, ceiling {figures['ceiling_fps']}")
            return figures
        return run

    def decode() -> dict:
        """1080p H.264 decoded to BGR on the CPU and by NVDEC: FPS and CPU ms per frame (the
        measured fall-back of ``--decoder auto``)."""
        import tempfile

        from detstream.engines.data.synthetic import SceneConfig
        from detstream.engines.data.synthetic.sequence import write_sequence
        from detstream.engines.data.video import nvdec_unavailable
        from detstream.stream.bench.pipeline import decode_alone

        result: dict = {"nvdec_unavailable": nvdec_unavailable()}
        with tempfile.TemporaryDirectory() as tmp:
            write_sequence(Path(tmp), SceneConfig(width=1920, height=1080, fps=30, frames=150,
                                                  seed=0))
            for decoder in ("software", "nvdec"):
                if decoder == "nvdec" and result["nvdec_unavailable"]:
                    break
                images, stage, _ = decode_alone(str(Path(tmp) / "video.mp4"), 150, decoder)
                result[decoder] = {"frames": len(images), "fps": round(1000 / stage.mean_ms, 1),
                                   "cpu_ms_per_frame": round(stage.cpu_ms, 2)}
                say(f"  {decoder}: {result[decoder]['fps']} FPS, "
                    f"{result[decoder]['cpu_ms_per_frame']} ms of CPU a frame")
        return result

    def multistream() -> dict:
        """8 and 16 streams in one process (batched), against the engine alone at the same
        batch: the issue-17 GPU figures."""
        from detstream.stream.bench.common import BenchModel
        from detstream.stream.bench.multistream import multistream_vs_engine

        video = Path(args.video)
        source = str(video) if video.is_file() else \
            "synthetic://?seed=0&size=1280x720&frames=300"
        model = BenchModel("default", "torch", imgsz=640)
        result = {}
        for streams in (8, 16):
            figures = multistream_vs_engine(source, streams, model, frames=args.frames)
            say(f"  {streams} streams: {figures['aggregate_fps']} FPS in all, engine alone "
                f"{figures['engine_only_fps']} FPS at batch {streams} "
                f"({figures['end_to_end_vs_engine']:.2f}x)")
            result[str(streams)] = figures
        return result

    def tensorrt() -> dict:
        result: dict = {"timing": [], "parity": {}, "build_or_load_seconds": {}}
        for size in sizes:
            ref, ref_raw = reference(size)
            start = time.perf_counter()
            engine = open_backend("default", "tensorrt", "cuda", imgsz=size, half=True,
                                  max_batch=8, log=say)
            result["build_or_load_seconds"][str(size)] = round(time.perf_counter() - start, 1)
            result["timing"] += timed_rows(engine, frames, (1, 8), args.seconds,
                                           "tensorrt-fp16")
            result["parity"][str(size)] = parity(f"tensorrt-fp16 {size}", ref_raw,
                                                 raw_output(engine, frames), engine.spec,
                                                 len(frames), parities)
            engine.close()
            graphs = open_backend("default", "tensorrt", "cuda", imgsz=size, half=True,
                                  max_batch=8, cuda_graph=True, log=say)
            result["timing"] += timed_rows(graphs, frames, (1, 8), args.seconds,
                                           "tensorrt-fp16-cudagraph")
            result["parity"][f"{size}-cudagraph"] = parity(
                f"tensorrt-fp16-cudagraph {size}", ref_raw, raw_output(graphs, frames),
                graphs.spec, len(frames), parities)
            graphs.close()
        return result

    statuses = {s.name: s for s in backend_statuses()}
    step("preprocess", preprocess)
    step("torch_cuda", torch_cuda)
    step("torch_cudagraph", torch_graphs)
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        step("onnxruntime_cuda", onnxruntime_cuda)
    else:
        not_tested["onnxruntime_cuda"] = (
            f"onnxruntime {onnxruntime.__version__} has no CUDA provider (providers: "
            f"{', '.join(onnxruntime.get_available_providers())})")
    try:
        import av  # noqa: F401  (the video stack: decode and encode)
    except ImportError as exc:
        not_tested["pipeline"] = f"PyAV is not importable ({exc}); bring its wheel"
    else:
        step("pipeline", pipeline(cuda_graph=False))
        if "torch_cudagraph" not in errors:
            step("pipeline_cudagraph", pipeline(cuda_graph=True))
        step("multistream", multistream)
        step("decode", decode)
    trt = statuses.get("tensorrt")
    if trt is not None and trt.usable:
        step("tensorrt", tensorrt)
    else:
        not_tested["tensorrt"] = trt.detail if trt is not None else "TensorRT is not installed"
    for name, why in not_tested.items():
        report[name] = f"not tested ({why})"

    failed = sorted(name for name, ok in parities.items() if not ok)
    passed = sorted(name for name, ok in parities.items() if ok)
    gaps = "; ".join(f"{name}: not tested ({why})" for name, why in not_tested.items())
    if failed or errors:
        problems = [f"parity FAILED for {', '.join(failed)}"] if failed else []
        problems += [f"{name} broke ({why})" for name, why in errors.items()]
        line = "; ".join(problems)
        code = 1
    else:
        line = f"parity passed for what ran ({', '.join(passed)})"
        code = 3 if args.require_tensorrt and "tensorrt" in not_tested else 0
    line += f"; {gaps}" if gaps else "; nothing left untested"
    report["result"] = line
    say(f"{line}\nfigures in {report.path} ({time.perf_counter() - started:.0f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
