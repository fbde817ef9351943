"""Open any model the project knows on the best (or the requested) backend.

``model`` is anything :func:`detstream.engines.zoo.resolve.resolve_model` takes: ``default``, a
named
model (``yolox-nano``...), a detstream checkpoint (``.safetensors``), an ONNX file (ours or an
imported YOLOv8/YOLO11, YOLOv5/YOLOv7 or YOLOX export) or a cached engine.
``backend="auto"`` picks TensorRT, then torch on CUDA, then onnxruntime on the CPU, and says
why. Checkpoints bound for onnxruntime or TensorRT are exported once to ONNX in the cache
(keyed by the checkpoint's SHA-256).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from detstream.engines.cache import cache_root, exclusive, file_sha256
from detstream.engines.errors import UserInputError
from detstream.engines.runtime.availability import cuda_unavailable_reason
from detstream.engines.runtime.base import Backend
from detstream.engines.spec import ModelSpec, check_input_size
from detstream.engines.zoo.resolve import ModelSource, resolve_model

BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime")
Log = Callable[[str], None]


def cached_onnx(source: ModelSource, imgsz: int | None, half: bool, max_batch: int,
                log: Log) -> tuple[Path, ModelSpec]:
    """The ONNX export of a checkpoint, from the cache or exported now."""
    from detstream.engines.export.onnx import export_onnx
    from detstream.engines.models.checkpoint import load_checkpoint

    size = check_input_size(imgsz or source.spec.input_size[0], source.spec.stride)
    precision = "fp16" if half else "fp32"
    key = f"{file_sha256(source.path)[:16]}_{size}_{precision}_b{max_batch}"
    path = cache_root() / "onnx" / f"{source.path.stem}_{key}.onnx"
    from detstream.engines.zoo.onnx_import import inspect_onnx

    if path.is_file():
        return path, inspect_onnx(path)
    with exclusive(path):  # processes starting together export it once
        if path.is_file():
            return path, inspect_onnx(path)
        model, spec, _ = load_checkpoint(source.path)
        log(f"exporting {source.name} to ONNX ({precision}, {size}x{size}) in the cache")
        return export_onnx(model, spec, path, size, half=half, max_batch=max_batch)


def _check_imgsz(source: ModelSource, imgsz: int | None) -> None:
    if imgsz and source.is_onnx and tuple(source.spec.input_size) != (imgsz, imgsz):
        h, w = source.spec.input_size
        raise UserInputError(f"{source.path} has a fixed {w}x{h} input; drop --imgsz or pass "
                             f"--imgsz {h}")


def _refuse_int8_file(source: ModelSource, why: str) -> None:
    """An INT8 file from ``detstream export --int8`` runs in onnxruntime on the CPU only."""
    from detstream.engines.export.metadata import int8_record

    if int8_record(source.path) is not None:
        raise UserInputError(f"{source.path} is an INT8 file for onnxruntime on the CPU; {why}: "
                             "pass the FP32 file it was made from")


def auto_choice(source: ModelSource) -> tuple[str, str, str]:
    """``(backend, device, why)`` for ``--backend auto``."""
    from detstream.engines.runtime.availability import backend_statuses

    usable = {s.name: s for s in backend_statuses()}
    trt = usable.get("tensorrt")
    if trt is not None and trt.usable:
        return "tensorrt", "cuda", "TensorRT and a CUDA device are present"
    no_trt = trt.detail if trt is not None else "TensorRT is not installed"
    cuda_reason = cuda_unavailable_reason()
    if not cuda_reason and source.runs_on_torch:
        return "torch", "cuda", f"{no_trt}; CUDA is available to torch"
    if not cuda_reason:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return "onnxruntime", "cuda", f"{no_trt}; onnxruntime has its CUDA provider"
    why = cuda_reason or "the model is an ONNX file and onnxruntime has no CUDA provider"
    return "onnxruntime", "cpu", f"{no_trt}; {why}"


def open_backend(model: str | Path | ModelSource = "default", backend: str = "auto",
                 device: str | None = None, imgsz: int | None = None, max_batch: int = 1,
                 names: str | Path | None = None, threads: int | None = None,
                 half: bool | None = None, cuda_graph: bool = False, spin: bool = False,
                 weights: str | Path | None = None, log: Log | None = None,
                 int8: bool | None = None) -> Backend:
    """Load ``model`` on ``backend``.

    Args:
        model: anything :func:`resolve_model` takes, or a :class:`ModelSource` it returned
            (then ``names`` and ``weights`` were already applied).
        backend: one of :data:`BACKENDS`.
        device: ``cpu`` or ``cuda[:N]``; default: CUDA for tensorrt, the best for the others.
        imgsz: square input size for checkpoints (ONNX files have their own).
        max_batch: largest batch the backend must accept.
        names: class-names file for ONNX files without names in their metadata.
        threads: CPU threads for torch and onnxruntime.
        half: FP16 (default: on CUDA yes, on the CPU no).
        cuda_graph: on CUDA (TensorRT and torch): capture the model in CUDA graphs when it
            opens (batch 1 to ``max_batch``) and replay them.
        spin: onnxruntime only: let idle intra-op threads busy-wait for the next call. Off by
            default: in a pipeline the spinning threads take the cores that decode, tracking
            and encoding need (on 2 cores it cut the sequential loop from 52 to 31 FPS).
        weights: a file the user already has for a named model (no download).
        log: where the choice, downloads and build progress are reported (default: nowhere).
        int8: onnxruntime on the CPU only: ``None`` runs the checked INT8 copy of an ONNX file
            (``NAME.int8.onnx`` from ``detstream export --int8``) or of a checkpoint
            (``NAME.int8.onnx`` beside ``NAME.safetensors``; the default model ships one)
            where it measures faster on this CPU (:mod:`detstream.engines.runtime.int8`),
            ``True`` always runs it, ``False`` never does.
    """
    log = log or (lambda message: None)
    if backend not in BACKENDS:
        raise UserInputError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    cores = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= 4 * cores:
        # Each thread reserves its stack: 100000 of them exhaust the memory before inference.
        raise UserInputError(f"--threads {threads}: use 1 to {4 * cores} (this machine has "
                             f"{cores} cores)")
    source = (model if isinstance(model, ModelSource)  # already resolved by the caller
              else resolve_model(model, names, weights, log))
    _check_imgsz(source, imgsz)
    if backend == "auto":
        backend, auto_device, why = auto_choice(source)
        device = device or auto_device
        log(f"backend auto -> {backend} on {device}: {why}")
    if device is not None and device.startswith("cuda") and cuda_unavailable_reason():
        raise UserInputError(f"--device {device}: {cuda_unavailable_reason()}; use --device cpu")
    if int8 and (backend != "onnxruntime" or (device or "cpu") != "cpu"):
        where = f"{backend} on {device}" if device else backend
        raise UserInputError(f"--int8 runs onnxruntime on the CPU, not {where}; pass "
                             "--backend onnxruntime --device cpu, or drop --int8")

    if backend == "tensorrt":
        from detstream.engines.runtime.tensorrt_backend import TensorRTBackend
        from detstream.engines.tensorrt.builder import import_tensorrt, require_cuda

        import_tensorrt()
        require_cuda(device or "cuda")
        if source.is_onnx:
            _refuse_int8_file(source, "TensorRT builds FP16 engines from the FP32 file")
            # FP32 ONNX files (imported and named models) get an FP16 copy for an FP16 engine.
            path, spec = source.path, source.spec
            if half is not False:
                from detstream.engines.export.fp16 import cached_fp16

                path = cached_fp16(path, log)
        else:
            path, spec = cached_onnx(source, imgsz, half is not False, max_batch, log)
        return TensorRTBackend(path, spec, device or "cuda", max_batch=max_batch,
                               cuda_graph=cuda_graph, log=log)
    if backend == "torch":
        if not source.runs_on_torch:
            raise UserInputError("the torch backend runs detstream checkpoints and torchvision "
                                 "models; run ONNX files with --backend onnxruntime or tensorrt")
        from dataclasses import replace

        from detstream.engines.models.checkpoint import load_checkpoint
        from detstream.engines.runtime.torch_backend import TorchBackend

        dev = device or ("cpu" if cuda_unavailable_reason() else "cuda")
        if source.is_onnx:  # a torchvision model: its own module, fixed input size
            from detstream.engines.zoo.resolve import load_torchvision

            net, spec = load_torchvision(source)
            return TorchBackend(net, spec, dev, half=half, threads=threads,
                                cuda_graph=cuda_graph, graph_batches=max_batch, log=log)
        net, spec, _ = load_checkpoint(source.path)
        if imgsz:
            size = check_input_size(imgsz, spec.stride)
            spec = replace(spec, input_size=(size, size))
        return TorchBackend(net, spec, dev, half=half, threads=threads, cuda_graph=cuda_graph,
                            graph_batches=max_batch, log=log)
    from detstream.engines.runtime.onnxruntime_backend import OnnxRuntimeBackend

    if cuda_graph:
        raise UserInputError("--cuda-graph applies to the torch and tensorrt backends on a CUDA "
                             "device, not to onnxruntime (chosen here); drop --cuda-graph or "
                             "pass --backend torch --device cuda")
    dev = device or "cpu"
    if source.is_onnx:
        path, spec = source.path, source.spec
    else:
        want_half = bool(half) if half is not None else dev.startswith("cuda")
        path, spec = cached_onnx(source, imgsz, want_half, max_batch, log)
    choice = None
    if dev == "cpu" and (source.is_onnx or not half):
        from detstream.engines.runtime.int8 import choose_precision
        from detstream.engines.runtime.onnxruntime_backend import default_threads

        # A checkpoint runs from its FP32 export in the cache; its INT8 copy (the default
        # model ships one) lies beside the checkpoint itself.
        checkpoint = None if source.is_onnx else source.path
        choice = choose_precision(path, spec, threads or default_threads(), int8, log,
                                  checkpoint=checkpoint, max_batch=max_batch)
        path = choice.path
    runtime = OnnxRuntimeBackend(path, spec, dev, threads=threads, spin=spin)
    runtime.precision_choice = choice.reason if choice is not None else None
    if choice is not None and choice.threads == runtime.threads and choice.fp32_ms is not None:
        runtime.call_ms = choice.int8_ms if choice.precision == "int8" else choice.fp32_ms
    return runtime
