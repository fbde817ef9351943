"""FP16 copies of FP32 ONNX files that did not come from a detstream checkpoint (imported and
named models), so they build FP16 TensorRT engines like our own and can be exported with
``--half``.

A strongly typed TensorRT build takes each layer's precision from the graph, so an FP16 engine
needs an FP16 graph. The conversion is onnxconverter-common's ``convert_float_to_float16``
(weights, activations, input and output in FP16; the ops it knows to need FP32 stay FP32).
The copy is checked against the FP32 file on real or rendered frames by
:func:`check_onnx_parity` (the FP16 rule of :mod:`detstream.engines.export.parity`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from detstream.engines.cache import atomic_output, cache_root, file_sha256
from detstream.engines.export.metadata import load_onnx, onnx_precision
from detstream.engines.export.parity import ParityReport, compare_detections
from detstream.engines.process.preprocess import Preprocessor
from detstream.engines.spec import ModelSpec


def convert_to_fp16(src: str | Path, out: str | Path) -> Path:
    """Write an FP16 copy of the FP32 ONNX file ``src`` to ``out`` (its metadata kept)."""
    import onnx
    from onnxconverter_common import float16

    model = load_onnx(src, load_weights=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "number will be truncated": tiny weights underflow
        half = float16.convert_float_to_float16(model, keep_io_types=False)
    onnx.checker.check_model(half)
    with atomic_output(out) as tmp:
        onnx.save(half, str(tmp))
    return Path(out)


def cached_fp16(src: str | Path, log=None) -> Path:
    """The FP16 copy of ``src`` from the cache (converted once, keyed by its SHA-256);
    ``src`` itself when it is already FP16."""
    src = Path(src)
    if onnx_precision(src) == "fp16":
        return src
    path = cache_root() / "onnx" / f"{src.stem}_{file_sha256(src)[:16]}_fp16.onnx"
    if not path.is_file():
        if log is not None:
            log(f"converting {src.name} to FP16 ONNX in the cache")
        convert_to_fp16(src, path)
    return path


def check_onnx_parity(reference: str | Path, candidate: str | Path, spec: ModelSpec,
                      frames: list[np.ndarray]) -> ParityReport:
    """Detections of ``candidate`` against ``reference`` (both in onnxruntime on the CPU)
    after decoding and NMS, by the FP16 rule."""
    from detstream.engines.runtime.onnxruntime_backend import OnnxRuntimeBackend

    raws = []
    for path in (reference, candidate):
        backend = OnnxRuntimeBackend(path, spec, "cpu")
        pre = Preprocessor(spec, "cpu", backend.dtype)
        outputs = []
        for frame in frames:
            batch, _ = pre([frame])
            outputs.append(backend.infer(batch).float())
        raws.append(torch.cat(outputs))
    return compare_detections(raws[0], raws[1], spec, len(frames))
