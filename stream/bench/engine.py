"""``detstream bench engine``: inference alone, per backend, input size and batch.

Preprocessed real frames in, raw output out: each row is ``time_backend``'s median and p95 ms
per call and the frames per second at the median. Backends (variants): ``tensorrt`` (FP16),
``torch-fp16`` (CUDA), ``torch-fp32``, ``onnxruntime`` (CPU, or CUDA with onnxruntime-gpu;
on the CPU the file a run would pick, FP32 or its INT8 copy); ``torch`` alone is torch at the
device's default precision; ``onnxruntime-fp32`` and ``onnxruntime-int8`` force the FP32 file
or its checked INT8 copy (``NAME.int8.onnx`` from ``detstream export --int8``). A variant that
cannot run here is skipped with the reason. Every row is timed at each ``--threads`` count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from detstream.engines.errors import UserInputError
from detstream.engines.export.parity import sample_frames
from detstream.engines.runtime.availability import cuda_unavailable_reason
from detstream.engines.runtime.base import Backend
from detstream.engines.runtime.benchmark import Timing, time_backend
from detstream.engines.runtime.select import open_backend, resolve_model
from detstream.engines.zoo.resolve import ModelSource
from detstream.stream.bench.common import Log, quiet

VARIANTS = ("tensorrt", "torch-fp16", "torch-fp32", "onnxruntime")
#: Named only, not in ``all``: torch at the device's default precision (FP16 on CUDA, FP32 on
#: the CPU), and onnxruntime on the CPU with the precision forced (``--no-int8``, ``--int8``).
ALIASES = ("torch", "onnxruntime-fp32", "onnxruntime-int8")


def parse_variants(text: str) -> list[str]:
    """``--backend``: ``all`` or a comma list of :data:`VARIANTS` (and :data:`ALIASES`)."""
    if text == "all":
        return list(VARIANTS)
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS + ALIASES]
    if unknown:
        raise UserInputError(f"--backend {text}: unknown {', '.join(unknown)}; choose all or "
                             f"from {', '.join(VARIANTS)}")
    return names


def variant_unavailable(variant: str, source: ModelSource, device: str,
                        no_cuda: str | None) -> str | None:
    """Why ``variant`` cannot run ``source`` on ``device`` at all, or None."""
    if variant == "torch-fp16" and device == "cpu":
        return f"{variant}: needs CUDA ({no_cuda or 'CPU requested'})"
    if variant.startswith("onnxruntime-") and device != "cpu":
        return f"{variant}: INT8 and FP32 are chosen between on the CPU (--device cpu)"
    if variant.split("-")[0] == "torch" and not source.runs_on_torch:
        return f"{variant}: runs checkpoints and torchvision models, not ONNX files"
    return None


def open_variant(source: ModelSource, variant: str, device: str, size: int, batch: int,
                 threads: int | None = None, cuda_graph: bool = False,
                 names: str | None = None, weights: str | Path | None = None,
                 log: Log = quiet) -> Backend:
    """``source`` on ``variant``'s backend at input ``size``, taking batches up to ``batch``."""
    kind = variant.split("-")[0]
    half = {"torch-fp16": True, "torch-fp32": False}.get(variant)
    int8 = {"onnxruntime-int8": True, "onnxruntime-fp32": False}.get(variant)
    return open_backend(source, kind, device if kind != "tensorrt" else None,
                        imgsz=None if source.is_onnx else size, max_batch=batch, names=names,
                        threads=threads, half=half, cuda_graph=cuda_graph, weights=weights,
                        log=log, int8=int8)


def time_batches(backend: Backend, frames: list[np.ndarray], batches: Sequence[int],
                 seconds: float) -> list[Timing]:
    """One :class:`Timing` per batch size on an open backend, ``seconds`` each."""
    return [time_backend(backend, frames, batch, seconds) for batch in batches]


def bench_engine(model: str, variants: list[str], sizes: list[int] | None = None,
                 batches: Sequence[int] = (1,), seconds: float = 3.0,
                 threads: Sequence[int | None] = (None,), device: str | None = None,
                 cuda_graph: bool = False, names: str | None = None,
                 weights: str | Path | None = None, log: Log = quiet,
                 show: Callable[[str], None] = quiet) -> dict:
    """Time ``model`` on every variant, input size and batch that can run here.

    Args:
        model: anything ``resolve_model`` takes.
        variants: from :func:`parse_variants`.
        sizes: input sizes (default: the model's own).
        batches: batch sizes.
        seconds: timing per row.
        threads: CPU thread counts for torch and onnxruntime, each timed in turn
            (``None``: the backend's default).
        device: ``cpu`` or ``cuda`` (default: CUDA where it runs).
        cuda_graph: replay from CUDA graphs (CUDA backends).
        names, weights: as ``--names`` and ``--weights``.
        log: progress and notes.
        show: called with the table's lines as they are measured (:func:`table_header`,
            then :func:`table_row` per row).

    Returns:
        ``{"model", "rows": [Timing as dict, ...], "skipped": [why, ...]}``.
    """
    source = resolve_model(model, names, weights, log)
    sizes = sizes or [source.spec.input_size[0]]
    no_cuda = cuda_unavailable_reason()
    device = device or ("cpu" if no_cuda else "cuda")
    frames = sample_frames(4)
    rows: list[dict] = []
    skipped: list[str] = []
    show(table_header())
    for variant in variants:
        why = variant_unavailable(variant, source, device, no_cuda)
        if why is not None:
            skipped.append(why)
            continue
        # Every (threads, size, batch) of one variant; the first failure to open skips it.
        for count, size, batch in [(count, size, batch) for count in threads
                                   for size in sizes for batch in batches]:
            if source.is_onnx and source.spec.input_size[0] != size:
                skipped.append(f"{variant} at {size}: the ONNX file's input is fixed at "
                               f"{source.spec.input_size[0]}")
                continue
            try:
                backend = open_variant(source, variant, device, size, batch, count,
                                       cuda_graph, names, weights, log)
            except UserInputError as exc:
                skipped.append(f"{variant}: {exc}")
                break
            if batch > backend.max_batch:
                skipped.append(f"{variant} batch {batch}: the model takes at most "
                               f"{backend.max_batch}")
                continue
            (row,) = time_batches(backend, frames, [batch], seconds)
            backend.close()
            rows.append(row.to_dict())
            show(table_row(rows[-1]))
    return {"model": model, "rows": rows, "skipped": list(dict.fromkeys(skipped))}


def table_header() -> str:
    return f"{'backend':<58}{'imgsz':>6}{'batch':>6}{'ms':>9}{'p95 ms':>9}{'FPS':>9}"


def table_row(row: dict) -> str:
    """One timed row (a :class:`Timing` as dict) under :func:`table_header`."""
    return (f"{row['backend']:<58}{row['imgsz']:>6}{row['batch']:>6}{row['ms']:>9.2f}"
            f"{row['p95_ms']:>9.2f}{row['fps']:>9.1f}")


def print_skipped(result: dict) -> None:
    """The variants and rows :func:`bench_engine` skipped, with why."""
    for line in result["skipped"]:
        print(f"skipped {line}")


def check_timed(result: dict) -> None:
    """Raise when nothing was timed, naming the first reason.

    Raises:
        UserInputError: no row in ``result``.
    """
    if not result["rows"]:
        skipped = result["skipped"]
        raise UserInputError(f"no backend could be timed ({skipped[0] if skipped else 'none'})")
