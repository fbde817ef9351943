"""What several benchmarks share: the model they open, and wall and CPU clocks (writing the
figures as JSON is ``job.py``'s: it needs no torch)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from detstream.engines.predict import Predictor
from detstream.engines.runtime.base import Backend
from detstream.engines.runtime.select import open_backend

Log = Callable[[str], None]


def quiet(message: str) -> None:
    """A ``log`` that drops its messages."""


@dataclass(frozen=True)
class BenchModel:
    """The model a pipeline benchmark opens, as ``--model``, ``--backend`` and friends name it.

    Attributes:
        model: anything ``resolve_model`` takes (``default``, a checkpoint, an ONNX file).
        backend: ``auto``, ``tensorrt``, ``torch`` or ``onnxruntime``.
        imgsz: square input size for checkpoints (ONNX files have their own).
        names: class names for an ONNX file.
        cuda_graph: replay the model from CUDA graphs (CUDA backends only).
        weights: a named model's weights file instead of the download.
    """

    model: str = "default"
    backend: str = "auto"
    imgsz: int | None = None
    names: str | None = None
    cuda_graph: bool = False
    weights: str | Path | None = None

    def open(self, threads: int | None = None, spin: bool = False) -> Backend:
        """The backend with ``threads`` CPU threads (idle threads ``spin`` on onnxruntime)."""
        return open_backend(self.model, self.backend, imgsz=self.imgsz, names=self.names,
                            threads=threads, spin=spin, cuda_graph=self.cuda_graph,
                            weights=self.weights)

    def run_options(self) -> dict:
        """These as :class:`~detstream.stream.run_config.RunConfig` keyword options."""
        return {"model": self.model, "backend": self.backend, "imgsz": self.imgsz,
                "names": self.names, "cuda_graph": self.cuda_graph, "weights": self.weights}

    def predictor(self, threads: int | None = None) -> Predictor:
        """A :class:`Predictor` on :meth:`open`'s backend."""
        return Predictor(self.open(threads))


def timed(fn: Callable[[], object], device: torch.device | None = None
          ) -> tuple[object, float]:
    """``fn()`` and its wall time in ms. On a CUDA ``device`` the time runs until the GPU has
    finished the work ``fn`` queued (CUDA calls return once the work is queued)."""
    start = time.perf_counter()
    value = fn()
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return value, (time.perf_counter() - start) * 1000.0


def median_ms(fn: Callable[[], object], device: torch.device | None = None, runs: int = 50,
              warmup: int = 5) -> float:
    """Median wall time of ``fn()`` in ms over ``runs`` calls after ``warmup`` untimed ones,
    each timed as :func:`timed` does (until a CUDA ``device`` is done)."""
    for _ in range(warmup):
        fn()
    return round(statistics.median(timed(fn, device)[1] for _ in range(runs)), 3)


class CpuClock:
    """CPU time of the whole process (every thread) over a block, in ms (``ms``).

    Wall time alone under-counts stages that hand work to their own threads: libx264 encodes
    on its frame threads after ``write`` returns, and onnxruntime's pool spins between calls.
    The ceiling's core budget needs what each stage really costs the machine.
    """

    ms = 0.0

    def __enter__(self) -> CpuClock:
        self._start = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ms = (time.process_time() - self._start) * 1000.0

