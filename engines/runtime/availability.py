"""Which inference backends this machine can run, and why the others cannot."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class BackendStatus:
    """Whether one backend on one device can run here.

    Attributes:
        name: backend and device, e.g. ``tensorrt``, ``torch-cuda``, ``onnxruntime-cpu``.
        usable: it can run here.
        detail: the version and device when usable, otherwise why not and what would fix it.
    """

    name: str
    usable: bool
    detail: str


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device as torch sees it."""

    index: int
    name: str
    capability: str
    memory_gib: float


def _try_import(name: str) -> tuple[Any | None, str]:
    try:
        return import_module(name), ""
    except Exception as exc:  # ImportError, or a broken native library (OSError)
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def gpus() -> list[GpuInfo]:
    """CUDA devices visible to torch (empty without torch, a CUDA build, or a GPU)."""
    torch, _ = _try_import("torch")
    if torch is None or not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append(GpuInfo(i, props.name, f"{props.major}.{props.minor}",
                           props.total_memory / 2**30))
    return out


def cuda_unavailable_reason() -> str:
    """Why torch sees no CUDA device (empty when it sees one)."""
    torch, error = _try_import("torch")
    if torch is None:
        return f"PyTorch is not importable ({error})"
    if torch.version.cuda is None:
        return f"PyTorch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return f"no CUDA device visible (PyTorch built for CUDA {torch.version.cuda})"
    return ""


def backend_statuses() -> list[BackendStatus]:
    """The status of every backend detstream knows, fastest first."""
    statuses = []
    no_cuda = cuda_unavailable_reason()
    devices = gpus()
    device_text = devices[0].name if devices else ""

    trt, trt_error = _try_import("tensorrt")
    if trt is None:
        statuses.append(BackendStatus(
            "tensorrt", False,
            "TensorRT is not installed (pip install 'detstream[tensorrt]' where NVIDIA's "
            "package index is reachable)"))
    elif no_cuda:
        statuses.append(BackendStatus("tensorrt", False,
                                      f"TensorRT {trt.__version__} is installed but {no_cuda}"))
    else:
        statuses.append(BackendStatus("tensorrt", True, f"TensorRT {trt.__version__} on "
                                                          f"{device_text}"))

    torch, torch_error = _try_import("torch")
    if torch is None:
        statuses.append(BackendStatus("torch-cuda", False, f"PyTorch missing: {torch_error}"))
        statuses.append(BackendStatus("torch-cpu", False, f"PyTorch missing: {torch_error}"))
    else:
        statuses.append(BackendStatus("torch-cuda", not no_cuda,
                                      no_cuda or f"PyTorch {torch.__version__} on {device_text}"))
        statuses.append(BackendStatus("torch-cpu", True,
                                      f"PyTorch {torch.__version__}, "
                                      f"{torch.get_num_threads()} threads"))

    ort, ort_error = _try_import("onnxruntime")
    if ort is None:
        for name in ("onnxruntime-cuda", "onnxruntime-cpu"):
            statuses.append(BackendStatus(name, False, f"onnxruntime missing: {ort_error}"))
    else:
        providers = ort.get_available_providers()
        if "CUDAExecutionProvider" not in providers:
            statuses.append(BackendStatus(
                "onnxruntime-cuda", False,
                "this onnxruntime has no CUDA provider (install onnxruntime-gpu instead)"))
        elif no_cuda:
            statuses.append(BackendStatus("onnxruntime-cuda", False, no_cuda))
        else:
            statuses.append(BackendStatus("onnxruntime-cuda", True,
                                          f"onnxruntime {ort.__version__} on {device_text}"))
        statuses.append(BackendStatus("onnxruntime-cpu", "CPUExecutionProvider" in providers,
                                      f"onnxruntime {ort.__version__}"))
    return statuses
