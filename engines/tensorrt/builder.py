"""Build TensorRT engines from ONNX and keep them in a cache.

Engines are built as *strongly typed* networks: the precision of every layer is the precision
of the ONNX graph, so an FP16 engine comes from an FP16 ONNX (the FP32 box decoding in our head
stays FP32 by its explicit casts). That is the only way TensorRT 11 builds (``BuilderFlag.FP16``
is gone) and works the same on TensorRT 10 (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``).

An engine is tied to the TensorRT version and the GPU, so the cache key holds the ONNX file's
SHA-256, the TensorRT version, the GPU name and compute capability, and the shape profile.
A cached engine that fails to deserialize is rebuilt. The timing cache is kept between builds
(per TensorRT version and GPU), which makes rebuilds much faster.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engines.cache import cache_root, file_sha256
from engines.errors import UserInputError

Log = Callable[[str], None]


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or one clear error saying how to get it."""
    try:
        import tensorrt
    except Exception as exc:  # ImportError, or a broken native library
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserInputError(
            f"TensorRT is not installed here ({detail}); install it on an NVIDIA GPU machine "
            "with pip install 'detstream[tensorrt]', or use --backend torch or onnxruntime"
        ) from None
    return tensorrt


def require_cuda(device: str | torch.device = "cuda") -> torch.device:
    """A CUDA device, or one clear error."""
    if not torch.cuda.is_available():
        raise UserInputError("no CUDA device is visible here; TensorRT needs an NVIDIA GPU "
                             "(use --backend onnxruntime or torch on the CPU)")
    device = torch.device(device)
    return torch.device("cuda", device.index or 0) if device.type == "cuda" else device


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on."""

    onnx_sha256: str
    tensorrt: str
    gpu: str
    capability: str
    precision: str
    batch: tuple[int, int, int]  # min, opt, max
    input_size: tuple[int, int]

    def file_name(self) -> str:
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", self.gpu).strip("-").lower()
        b = "-".join(str(v) for v in self.batch)
        return (f"{self.onnx_sha256[:16]}_trt{self.tensorrt}_{gpu}_sm{self.capability}_"
                f"{self.precision}_b{b}_{self.input_size[0]}x{self.input_size[1]}.engine")


def engine_dir() -> Path:
    return cache_root() / "engines"


def engine_key(onnx_path: Path, precision: str, batch: tuple[int, int, int],
               input_size: tuple[int, int], device: torch.device) -> EngineKey:
    trt = import_tensorrt()
    props = torch.cuda.get_device_properties(device)
    return EngineKey(file_sha256(onnx_path), trt.__version__, props.name,
                     f"{props.major}{props.minor}", precision, tuple(batch), tuple(input_size))


def build_engine(onnx_path: Path, key: EngineKey, workspace_gb: float, log: Log) -> bytes:
    """Build and serialize an engine for ``key`` (progress and timing go to ``log``)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserInputError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    image = network.get_input(0)
    profile = builder.create_optimization_profile()
    h, w = key.input_size
    low, opt, high = key.batch
    profile.set_shape(image.name, (low, 3, h, w), (opt, 3, h, w), (high, 3, h, w))
    config.add_optimization_profile(profile)
    timing_path = engine_dir() / f"timing_trt{key.tensorrt}_sm{key.capability}.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file()
                                        else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    monitor = _progress_monitor(trt, log)
    if monitor is not None:
        config.progress_monitor = monitor
    log(f"building TensorRT {key.tensorrt} {key.precision} engine for {key.gpu} "
        f"(batch {low}-{high}, {w}x{h}) from {onnx_path.name}; this takes a minute or two")
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserInputError(f"TensorRT failed to build an engine from {onnx_path}; see the "
                             "TensorRT messages above")
    timing_path.parent.mkdir(parents=True, exist_ok=True)
    timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    log(f"engine built in {time.perf_counter() - start:.1f} s")
    return bytes(serialized)


def _progress_monitor(trt: Any, log: Log) -> Any:
    """A TensorRT progress monitor that logs each build phase once (TensorRT >= 10)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class PhaseLog(base):
        def __init__(self) -> None:
            base.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                log(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            return True  # keep building

        def phase_finish(self, phase_name):
            pass

    return PhaseLog()


def load_or_build(onnx_path: str | Path, precision: str, batch: tuple[int, int, int],
                  input_size: tuple[int, int], device: torch.device,
                  workspace_gb: float = 4.0, log: Log = print) -> tuple[Any, Path]:
    """A deserialized engine for the ONNX file: from the cache, or built now and cached.

    Returns:
        ``(engine, path)``: the ``ICudaEngine`` and its file in the cache.
    """
    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    key = engine_key(onnx_path, precision, batch, input_size, device)
    path = engine_dir() / key.file_name()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    if path.is_file():
        try:
            engine = runtime.deserialize_cuda_engine(path.read_bytes())
        except Exception:  # a stale file from another TensorRT: rebuilt below
            engine = None
        if engine is not None:
            log(f"TensorRT engine from cache: {path}")
            return engine, path
        log(f"cached engine {path.name} does not load with this TensorRT/GPU; rebuilding")
    data = build_engine(onnx_path, key, workspace_gb, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".engine.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({**asdict(key), "onnx": str(onnx_path)},
                                                    indent=2) + "\n", encoding="utf-8")
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise UserInputError(f"the engine just built from {onnx_path} does not deserialize")
    return engine, path
