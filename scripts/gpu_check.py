"""GPU check: engine build or load, parity against PyTorch FP32 on real frames, latency and
throughput per backend. Run through scripts/gpu_check.sh on a machine with an NVIDIA GPU.

Prints one block of figures to copy into BENCHMARKS.md and writes them as JSON to $OUT (or
./gpu-check) when set.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from engines.export.parity import compare_detections, sample_frames
from engines.process.preprocess import Preprocessor
from engines.runtime.availability import backend_statuses, gpus
from engines.runtime.benchmark import time_backend
from engines.runtime.select import open_backend


def main() -> int:
    out = Path(os.environ.get("OUT") or "gpu-check")
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"python": platform.python_version(), "torch": torch.__version__,
                    "cuda": torch.version.cuda, "gpus": [g.__dict__ for g in gpus()],
                    "backends": {s.name: s.detail for s in backend_statuses() if s.usable}}
    print(json.dumps(report, indent=2))
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here")
        return 2
    frames = sample_frames(8)
    usable = {s.name for s in backend_statuses() if s.usable}
    variants = [("torch-fp32", "torch", False), ("torch-fp16", "torch", True)]
    if "tensorrt" in usable:
        variants.insert(0, ("tensorrt-fp16", "tensorrt", True))
    else:
        print("TensorRT is not installed: checking the torch-CUDA parts only")

    def log(message: str) -> None:
        print(message, flush=True)

    reference = open_backend("default", "torch", "cuda", half=False, max_batch=8)
    pre = Preprocessor(reference.spec, "cuda", torch.float32)
    batch, _ = pre(frames)
    ref_raw = reference.infer(batch).float()
    report["parity"], report["timing"] = {}, []
    for name, kind, half in variants:
        start = time.perf_counter()
        backend = open_backend("default", kind, "cuda", half=half, max_batch=8, log=log)
        report.setdefault("open_seconds", {})[name] = round(time.perf_counter() - start, 1)
        raw = backend.infer(batch.to(backend.dtype)).float()
        parity = compare_detections(ref_raw, raw, reference.spec, len(frames))
        report["parity"][name] = parity.__dict__
        print(f"{name}: {parity.summary()}", flush=True)
        for size in (320, 640):
            for n in (1, 8):
                sized = open_backend("default", kind, "cuda", imgsz=size, half=half,
                                     max_batch=n, log=log)
                row = time_backend(sized, frames, n, seconds=2.0)
                report["timing"].append({"variant": name, **row.to_dict()})
                print(f"{name:<14} {size:>4} batch {n}: {row.ms:8.3f} ms  {row.fps:9.1f} FPS",
                      flush=True)
                sized.close()
    # The full pipeline on a real video (or a rendered one): stages alone, sequential, pipelined.
    from stream.bench import bench_pipeline

    video = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "bikes.mp4"
    source = str(video) if video.is_file() else "synthetic://?seed=0&size=1280x720&frames=300"
    best = "tensorrt" if "tensorrt" in usable else "torch"
    report["pipeline"] = bench_pipeline(source, "default", frames=250, backend=best, log=log)
    pipe = report["pipeline"]
    print(f"pipeline on {Path(source).name} ({best}): {pipe['pipelined_fps']} FPS pipelined, "
          f"{pipe['sequential_fps']} sequential, ceiling {pipe['ceiling_fps']}", flush=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    failed = [name for name, p in report["parity"].items() if not p["passed"]]
    if failed:
        print(f"parity FAILED for {', '.join(failed)}")
        return 1
    print(f"all parity checks passed; figures in {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
