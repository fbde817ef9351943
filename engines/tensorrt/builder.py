"""Build TensorRT engines from ONNX and keep them in a cache.

Engines are built as *strongly typed* networks: the precision of every layer is the precision
of the ONNX graph, so an FP16 engine comes from an FP16 ONNX (the FP32 box decoding in our head
stays FP32 by its explicit casts). That is the only way TensorRT 11 builds (``BuilderFlag.FP16``
is gone) and works the same on TensorRT 10 (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``).

An engine is tied to the TensorRT version, the CUDA major version its wheel was built for, and
the GPU, so the cache key (:func:`engine_key`, the one key function for ``detstream build`` and
``open_backend``) holds the ONNX file's SHA-256, those three, the precision and the shape
profile (:mod:`detstream.engines.tensorrt.profile`). A cached engine that fails to deserialize is
rebuilt.
A timing cache per TensorRT, CUDA and GPU model is kept between builds, which makes rebuilds
much faster.

The calls below follow TensorRT's Python bindings (``python/src/infer/pyCore.cpp`` and
``python/docstrings/infer/pyCoreDoc.h`` in NVIDIA/TensorRT, 10.x and 11.x).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from detstream.engines.cache import cache_root, exclusive, file_sha256, write_atomic
from detstream.engines.errors import UserInputError
from detstream.engines.export.metadata import onnx_precision
from detstream.engines.tensorrt.profile import EngineIO, engine_io

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


_LOGGER: Any = None


def trt_logger() -> Any:
    """The process's one ``trt.Logger`` (TensorRT warns when a second logger is made)."""
    global _LOGGER
    if _LOGGER is None:
        trt = import_tensorrt()
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def require_cuda(device: str | torch.device = "cuda") -> torch.device:
    """The CUDA device TensorRT should use (``cuda`` means ``cuda:0``), or one clear error."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserInputError(f"--device {device!r} is not a device; pass cuda or cuda:N") \
            from None
    if device.type != "cuda":
        raise UserInputError(f"--device {device}: TensorRT runs on NVIDIA GPUs only; pass "
                             "--device cuda, or use --backend onnxruntime or torch on the CPU")
    if not torch.cuda.is_available():
        raise UserInputError("no CUDA device is visible here; TensorRT needs an NVIDIA GPU "
                             "(use --backend onnxruntime or torch on the CPU)")
    index = device.index or 0
    if index >= torch.cuda.device_count():
        raise UserInputError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                             "device(s) here")
    return torch.device("cuda", index)


def cuda_variant(distributions: Iterable[str]) -> str:
    """``cu12``, ``cu13``...: the CUDA major version TensorRT's wheels were built for, read
    from their names (``tensorrt-cu12``, ``tensorrt_cu13_libs``...); ``cu-unknown`` for a
    TensorRT installed otherwise (system packages, JetPack)."""
    for name in distributions:
        found = re.fullmatch(r"tensorrt[-_]cu(\d+)(?:[-_](?:libs|bindings))?",
                             name.strip().lower())
        if found:
            return f"cu{found.group(1)}"
    return "cu-unknown"


@lru_cache(maxsize=1)
def installed_cuda_variant() -> str:
    """:func:`cuda_variant` of the installed distributions."""
    return cuda_variant(dist.metadata["Name"] or "" for dist in metadata.distributions())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on."""

    onnx_sha256: str
    tensorrt: str
    cuda: str
    gpu: str
    capability: str
    precision: str
    batch: tuple[int, int, int]  # min, opt, max
    input_size: tuple[int, int]

    def file_name(self) -> str:
        b = "-".join(str(v) for v in self.batch)
        return (f"{self.onnx_sha256[:16]}_trt{self.tensorrt}_{self.cuda}_{_slug(self.gpu)}_"
                f"sm{self.capability}_{self.precision}_b{b}_"
                f"{self.input_size[0]}x{self.input_size[1]}.engine")

    def timing_cache_name(self) -> str:
        """Timing caches hold kernel timings measured on one GPU model: shared between builds
        on it, never between GPUs (two GPUs of one architecture time kernels differently)."""
        return f"timing_trt{self.tensorrt}_{self.cuda}_{_slug(self.gpu)}_sm{self.capability}.cache"


def engine_dir() -> Path:
    return cache_root() / "engines"


def engine_key(onnx_path: Path, io: EngineIO, device: torch.device) -> EngineKey:
    """The cache key of the engine for ``onnx_path`` with profile ``io`` on ``device``."""
    trt = import_tensorrt()
    props = torch.cuda.get_device_properties(device)
    return EngineKey(file_sha256(onnx_path), trt.__version__, installed_cuda_variant(),
                     props.name, f"{props.major}{props.minor}", onnx_precision(onnx_path),
                     io.batch, io.input_size)


def _attach_timing_cache(config: Any, path: Path, log: Log) -> None:
    """Give the builder the saved timing cache, or a fresh one when the saved one does not
    load or belongs to another device (``set_timing_cache`` returns ``False`` then)."""
    saved = b""
    if path.is_file():
        saved = path.read_bytes()
    for data in ((saved, b"") if saved else (b"",)):
        try:
            cache = config.create_timing_cache(data)
        except Exception:  # a damaged file: TensorRT raises rather than return None
            cache = None
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
            return
        if data:
            log(f"timing cache {path.name} does not load on this GPU/TensorRT; starting a "
                "fresh one")
    log("building without a timing cache")


def _save_timing_cache(config: Any, path: Path, log: Log) -> None:
    """Keep the builder's timing cache for the next build (``get_timing_cache`` may return
    ``None``). A failure here costs only time on the next build, never the engine."""
    cache = config.get_timing_cache()
    if cache is None:
        return
    try:
        write_atomic(path, bytes(cache.serialize()))
    except OSError as exc:
        log(f"could not save the timing cache {path} ({exc}); the engine is kept")


def build_engine(onnx_path: Path, key: EngineKey, io: EngineIO, workspace_gb: float,
                 log: Log) -> bytes:
    """Build and serialize an engine for ``key`` on the current CUDA device (progress and
    timing go to ``log``)."""
    trt = import_tensorrt()
    builder = trt.Builder(trt_logger())
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger())
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserInputError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    image = network.get_input(0)
    h, w = key.input_size
    low, opt, high = key.batch
    if int(image.shape[0]) < 0:  # a dynamic batch: the profile covers it (-1 means dynamic)
        profile = builder.create_optimization_profile()
        profile.set_shape(image.name, (low, 3, h, w), (opt, 3, h, w), (high, 3, h, w))
        config.add_optimization_profile(profile)
    elif int(image.shape[0]) != high:
        raise UserInputError(f"{onnx_path}: TensorRT reads a batch of {image.shape[0]}, the "
                             f"ONNX graph says {high}; export the model again")
    timing_path = engine_dir() / key.timing_cache_name()
    _attach_timing_cache(config, timing_path, log)
    monitor = _progress_monitor(trt, log)
    if monitor is not None:
        config.progress_monitor = monitor
    log(f"building TensorRT {key.tensorrt} ({key.cuda}) {key.precision} engine for {key.gpu} "
        f"(batch {low}-{high}, {w}x{h}) from {onnx_path.name}; this takes a minute or two")
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserInputError(f"TensorRT failed to build an engine from {onnx_path}; see the "
                             "TensorRT messages above")
    _save_timing_cache(config, timing_path, log)
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


def load_or_build(onnx_path: str | Path, max_batch: int, device: torch.device,
                  workspace_gb: float = 4.0, log: Log = print
                  ) -> tuple[Any, Path, EngineKey, EngineIO]:
    """A deserialized engine for the ONNX file taking batches up to ``max_batch`` (fewer when
    the file fixes its batch): from the cache, or built now on ``device`` and cached.

    Returns:
        ``(engine, path, key, io)``: the ``ICudaEngine``, its file in the cache, its key and
        its tensors and profile.
    """
    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    device = require_cuda(device)
    io = engine_io(onnx_path, max_batch)
    key = engine_key(onnx_path, io, device)
    path = engine_dir() / key.file_name()
    # The builder and the runtime work on the current CUDA device: make it the keyed one.
    with torch.cuda.device(device), exclusive(path):  # workers starting together build once
        runtime = trt.Runtime(trt_logger())
        if path.is_file():
            try:
                engine = runtime.deserialize_cuda_engine(path.read_bytes())
            except Exception:  # a damaged file or one from another TensorRT: rebuilt below
                engine = None
            if engine is not None:
                log(f"TensorRT engine from cache: {path}")
                return engine, path, key, io
            log(f"cached engine {path.name} does not load with this TensorRT/GPU; rebuilding")
        data = build_engine(onnx_path, key, io, workspace_gb, log)
        write_atomic(path, data)
        write_atomic(path.with_suffix(".json"),
                     json.dumps({**asdict(key), "onnx": str(onnx_path)}, indent=2) + "\n")
        engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise UserInputError(f"the engine just built from {onnx_path} does not deserialize")
    return engine, path, key, io
