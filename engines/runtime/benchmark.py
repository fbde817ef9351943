"""Time a backend: milliseconds per batch and frames per second, on real preprocessed frames."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from detstream.engines.process.preprocess import Preprocessor
from detstream.engines.runtime.base import Backend


@dataclass(frozen=True)
class Timing:
    """One benchmark row.

    Attributes:
        backend: the backend's one-line description.
        imgsz: input size (height).
        batch: images per call.
        ms: median milliseconds per call (per batch).
        p95_ms: 95th percentile per call.
        fps: images per second at the median.
        runs: timed calls.
    """

    backend: str
    imgsz: int
    batch: int
    ms: float
    p95_ms: float
    fps: float
    runs: int

    def to_dict(self) -> dict:
        return asdict(self)


def _sync(backend: Backend) -> None:
    if backend.device.type == "cuda":
        torch.cuda.synchronize(backend.device)


def time_backend(backend: Backend, frames: list[np.ndarray], batch: int,
                 seconds: float = 3.0, warmup: int = 5, max_runs: int = 500) -> Timing:
    """Run ``backend`` on a batch made of ``frames`` for about ``seconds`` after a warm-up."""
    pre = Preprocessor(backend.spec, backend.device, backend.dtype)
    images = [frames[i % len(frames)] for i in range(batch)]
    inputs, _ = pre(images)
    for _ in range(warmup):
        backend.infer(inputs)
    _sync(backend)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < max_runs and (time.perf_counter() < deadline or len(times) < 5):
        start = time.perf_counter()
        backend.infer(inputs)
        _sync(backend)
        times.append((time.perf_counter() - start) * 1000.0)
    median = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    return Timing(backend.describe(), int(backend.spec.input_size[0]), batch, round(median, 3),
                  round(p95, 3), round(batch * 1000.0 / median, 1), len(times))
