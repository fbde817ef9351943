"""FP32 or INT8 on the CPU: the INT8 copy runs only where this machine runs it faster.

``detstream export --int8`` writes ``NAME.int8.onnx`` beside ``NAME.onnx`` once it has
passed its accuracy check. When the onnxruntime backend opens ``NAME.onnx`` on the CPU and a
checked INT8 copy of that very file is beside it, both are timed briefly at the run's thread
count (INT8 kernels gain a lot on some CPUs and nothing on others: 1.49x with one thread and
1.10x with two on the 2-core AMD EPYC of FACTS.md) and INT8 is used only when it is at least
:data:`MIN_SPEEDUP` times as fast. The decision is kept in the cache, keyed by both files'
SHA-256, the thread count and the CPU model, so it is measured once per machine.

``int8=True`` (``--int8``) uses the INT8 copy without timing (it must exist and have passed
its check); ``int8=False`` (``--no-int8``) never looks for it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from detstream.engines.cache import cache_root, exclusive, file_sha256, write_atomic
from detstream.engines.errors import UserInputError
from detstream.engines.export.metadata import (
    INT8_SUFFIX,
    SPEC_KEY,
    checkpoint_int8_path,
    int8_path,
    int8_record,
    load_onnx,
    read_metadata,
    spec_from_metadata,
)
from detstream.engines.spec import ModelSpec

#: INT8 costs a little accuracy, and two timings on a busy machine differ by a few percent:
#: it is chosen only when it is at least this much faster.
MIN_SPEEDUP = 1.05
#: Untimed calls, then timed calls, of each model (alternated, so a burst of load elsewhere
#: slows both alike).
WARMUP_RUNS = 2
TIMED_RUNS = 7

Log = Callable[[str], None]
#: ``(fp32_path, int8_path, spec, threads) -> (fp32_ms, int8_ms)``.
Timer = Callable[[Path, Path, ModelSpec, int], tuple[float, float]]


@dataclass(frozen=True)
class PrecisionChoice:
    """Which file the onnxruntime backend runs, and why.

    Attributes:
        precision: ``fp32`` or ``int8``.
        path: the file to open.
        reason: one line for the log and the run's statistics.
        fp32_ms, int8_ms: the timings the choice rests on (``None`` when nothing was timed).
        threads: the thread count they were measured with.
    """

    precision: str
    path: Path
    reason: str
    fp32_ms: float | None = None
    int8_ms: float | None = None
    threads: int | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def checked_int8(fp32_path: str | Path) -> tuple[Path | None, str]:
    """The INT8 copy of ``fp32_path`` if it is there, passed its accuracy check and was made
    from this very file; else ``(None, why not)``."""
    fp32_path = Path(fp32_path)
    path = int8_path(fp32_path)
    if not path.is_file():
        return None, f"no INT8 copy {path.name} beside it (detstream export --int8 makes one)"
    why_not = _not_made_from(path, int8_record(path), "fp32_sha256", fp32_path)
    return (None, why_not) if why_not else (path, "")


def _not_made_from(path: Path, record: dict | None, key: str, source: Path) -> str:
    """Why the INT8 file ``path`` (its ``record``) cannot stand in for ``source``, whose
    SHA-256 the record keeps under ``key``: no passed accuracy check, or made from another
    version of it; ``""`` when it can."""
    if record is None or not record.get("passed"):
        return f"{path.name} holds no passed accuracy check"
    if record.get(key) != file_sha256(source):
        return (f"{path.name} was made from another version of {source.name}; export it again "
                "with --int8")
    return ""


def checked_checkpoint_int8(checkpoint: str | Path, size: int, max_batch: int = 1
                            ) -> tuple[Path | None, str]:
    """The INT8 copy of a detstream checkpoint, ``NAME.int8.onnx`` beside ``NAME.safetensors``
    (the default model ships one), if it passed its accuracy check, was made from this very
    checkpoint at input size ``size`` and takes batches of ``max_batch``; else
    ``(None, why not)``.

    The checkpoint's own ONNX export lives in the cache and its bytes depend on the torch
    version that wrote it, so the copy names the checkpoint's SHA-256 instead of the export's.
    """
    checkpoint = Path(checkpoint)
    path = checkpoint_int8_path(checkpoint)
    if not path.is_file():
        return None, (f"no INT8 copy {path.name} beside {checkpoint.name} (detstream export "
                      f"--model {checkpoint} --int8 --out {checkpoint.with_suffix('.onnx')} "
                      "makes one)")
    model = load_onnx(path)
    why_not = _not_made_from(path, int8_record(model), "checkpoint_sha256", checkpoint)
    if why_not:
        return None, why_not
    metadata = read_metadata(model)
    spec = spec_from_metadata(metadata)
    if spec is None or tuple(spec.input_size) != (size, size):
        made = "x".join(map(str, spec.input_size[::-1])) if spec is not None else "unknown"
        return None, f"{path.name} takes {made} input, not {size}x{size}"
    batch = json.loads(metadata.get(SPEC_KEY, "{}")).get("max_batch", 1)
    if int(batch) < max_batch:
        return None, f"{path.name} takes batches of up to {batch}, not {max_batch}"
    return path, ""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def choose_precision(fp32_path: str | Path, spec: ModelSpec, threads: int,
                     int8: bool | None = None, log: Log | None = None,
                     timer: Timer | None = None,
                     checkpoint: str | Path | None = None, max_batch: int = 1
                     ) -> PrecisionChoice:
    """The file the onnxruntime backend should open on the CPU for ``fp32_path``.

    Args:
        fp32_path: the FP32 ONNX file the model resolved to.
        spec: its contract (the timing input's size).
        threads: intra-op threads the backend will run with.
        int8: ``None`` to measure (once per machine), ``True`` to use the checked INT8 copy,
            ``False`` for FP32.
        log: where the choice is said.
        timer: measures both files (default :func:`time_pair`; tests pass their own).
        checkpoint: the detstream checkpoint ``fp32_path`` was exported from (in the cache):
            its INT8 copy is looked for beside it (:func:`checked_checkpoint_int8`).
        max_batch: the largest batch the run sends (the copy must take it).

    Raises:
        UserInputError: ``int8=True`` and no checked INT8 copy is there.
    """
    fp32_path = Path(fp32_path)
    log = log or (lambda message: None)
    if fp32_path.name.endswith(INT8_SUFFIX) and int8_record(fp32_path) is not None:
        # The INT8 file itself was named (reading every model's metadata first would load each
        # ONNX file twice).
        if int8 is False:
            raise UserInputError(f"--no-int8: {fp32_path.name} is an INT8 file; name the FP32 "
                                 "file it was made from")
        return PrecisionChoice("int8", fp32_path, f"int8: {fp32_path.name} is an INT8 file")
    if int8 is False:
        return PrecisionChoice("fp32", fp32_path, "fp32: --no-int8")
    if checkpoint is not None:
        candidate, why_not = checked_checkpoint_int8(checkpoint, spec.input_size[0], max_batch)
    else:
        candidate, why_not = checked_int8(fp32_path)
    if candidate is None:
        if int8:
            named = Path(checkpoint).name if checkpoint is not None else fp32_path.name
            raise UserInputError(f"--int8: {named} has {why_not}")
        return PrecisionChoice("fp32", fp32_path, f"fp32: {why_not}")
    if int8:
        choice = PrecisionChoice("int8", candidate, f"int8: --int8 ({candidate.name})")
        log(choice.reason)
        return choice
    choice = _measured(fp32_path, candidate, spec, threads, timer or time_pair, log)
    log(choice.reason)
    return choice


def _measured(fp32_path: Path, candidate: Path, spec: ModelSpec, threads: int, timer: Timer,
              log: Log) -> PrecisionChoice:
    """The timed choice, from the cache or measured now (once across processes)."""
    cpu = cpu_model()
    key = hashlib.sha256(json.dumps([file_sha256(fp32_path), file_sha256(candidate), threads,
                                     cpu]).encode()).hexdigest()[:32]
    record_path = cache_root() / "int8" / f"{key}.json"
    with exclusive(record_path):
        timings = _read_timings(record_path)
        measured_now = timings is None
        if timings is None:
            log(f"timing {fp32_path.name} in FP32 and INT8 with {threads} "
                f"thread{'s' if threads != 1 else ''} (once on this CPU)")
            timings = timer(fp32_path, candidate, spec, threads)
            write_atomic(record_path, json.dumps({"fp32_ms": timings[0], "int8_ms": timings[1],
                                                  "threads": threads, "cpu": cpu,
                                                  "fp32": str(fp32_path),
                                                  "int8": str(candidate)}, indent=2))
    fp32_ms, int8_ms = timings
    speedup = fp32_ms / int8_ms if int8_ms > 0 else 0.0
    where = (f"on this CPU with {threads} thread{'s' if threads != 1 else ''} "
             f"({int8_ms:.1f} vs {fp32_ms:.1f} ms; "
             f"{'measured now' if measured_now else 'measured earlier'})")
    if speedup >= MIN_SPEEDUP:
        return PrecisionChoice("int8", candidate, f"int8: {speedup:.2f}x faster than fp32 "
                               f"{where}", fp32_ms, int8_ms, threads)
    return PrecisionChoice("fp32", fp32_path, f"fp32: int8 only {speedup:.2f}x as fast "
                           f"{where}, {MIN_SPEEDUP:g}x needed", fp32_ms, int8_ms, threads)


def _read_timings(path: Path) -> tuple[float, float] | None:
    """A cached ``(fp32_ms, int8_ms)``, or ``None`` when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return float(data["fp32_ms"]), float(data["int8_ms"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def time_pair(fp32_path: Path, int8_file: Path, spec: ModelSpec, threads: int
              ) -> tuple[float, float]:
    """Median ms per call of each file in onnxruntime on the CPU with ``threads`` threads,
    batch 1, calls alternated after a warm-up."""
    from detstream.engines.runtime.onnxruntime_backend import OnnxRuntimeBackend

    backends = [OnnxRuntimeBackend(path, spec, "cpu", threads=threads)
                for path in (fp32_path, int8_file)]
    height, width = spec.input_size
    batch = torch.full((1, 3, height, width), 0.5)
    times: list[list[float]] = [[], []]
    for run in range(WARMUP_RUNS + TIMED_RUNS):
        for k, backend in enumerate(backends):
            start = time.perf_counter()
            backend.infer(batch)
            if run >= WARMUP_RUNS:
                times[k].append((time.perf_counter() - start) * 1000.0)
    for backend in backends:
        backend.close()
    return round(statistics.median(times[0]), 3), round(statistics.median(times[1]), 3)
