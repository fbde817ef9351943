"""Static INT8 quantization of an FP32 ONNX file with ONNX Runtime (QDQ format).

Activations are unsigned 8-bit per tensor, weights signed 8-bit per output channel, ranges
from MinMax calibration on the caller's preprocessed frames. What stays in FP32:

- the decode tail: every node from which no convolution follows (box decoding, DFL softmax,
  sigmoids, the concatenation of boxes in pixels with scores in [0, 1] and unit embedding
  vectors, which one 8-bit scale would ruin), and with it the last convolutions of each
  branch. Keeping the box branch's last convolution in FP32 took the default model's INT8
  mAP50-95 from -0.008 to -0.004 of FP32 at 416 on 256 held-out synthetic images;
- where the calibration frames call for it, the first convolutions (the stem) and the nodes
  between them. A model whose early channels differ widely in range loses the narrow ones in
  one per-tensor 8-bit scale: YOLOX-Nano's first convolution's channels reach from 0.4 to 131
  on its 0-255 input, and fully quantized its mAP50-95 on COCO128 fell from 0.372 to 0.086;
  with its first 16 convolutions in FP32 it kept 0.372.

:func:`quantize_model` decides the stem on the calibration frames alone (the held-out images
judge the result once, afterwards): the first of :data:`FP32_STEMS` whose raw output stays
within :data:`MIN_SQNR_DB` of FP32's on those frames, else the one closest to it. The first
quantization measures every tensor's range and keeps them in a JSON cache; the others reuse
it (about a second each).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from detstream.engines.errors import UserInputError
from detstream.engines.export.metadata import load_onnx

#: Per-channel scales need DequantizeLinear's ``axis`` (opset 13); older files are converted.
MIN_OPSET = 13
TARGET_OPSET = 17
#: The first convolutions kept in FP32, tried in this order (fastest model first).
FP32_STEMS = (0, 4, 16)
#: Signal to quantization noise of the raw output on the calibration frames that is good
#: enough: the default model reaches 37 dB with only its decode tail in FP32 (and loses 0.003
#: mAP50-95); YOLOX-Nano 6 dB (and loses 0.29), 13 dB with 16 convolutions in FP32 (0.000).
MIN_SQNR_DB = 30.0
#: Calibration frames the output comparison runs on.
SQNR_FRAMES = 16


def prepare(src: str | Path, out: str | Path) -> Path:
    """Write ``src`` ready for quantization to ``out``: at least opset 13, every node named
    (exclusion is by name), shapes inferred and constants folded by ONNX Runtime's
    ``quant_pre_process``.

    Raises:
        UserInputError: the file cannot be converted or prepared.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = load_onnx(src, load_weights=True)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    out = Path(out)
    staged = out.with_name(out.stem + ".staged.onnx")
    try:
        if opset < MIN_OPSET:
            from onnx import version_converter

            model = version_converter.convert_version(model, TARGET_OPSET)
        for index, node in enumerate(model.graph.node):
            if not node.name:
                node.name = f"{node.op_type}_{index}"
        onnx.save(model, str(staged))
        # Symbolic shape inference gives up on a dynamic batch dimension that flows into the
        # decode tail's reshapes (and leaves its temporary files in the working directory
        # when it does); ONNX's own shape inference is enough there.
        dynamic = any(dim.dim_param or not dim.dim_value
                      for value in model.graph.input
                      for dim in value.type.tensor_type.shape.dim)
        with _quiet():
            quant_pre_process(str(staged), str(out), skip_symbolic_shape=dynamic)
    except Exception as exc:  # onnx and onnxruntime raise many types
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserInputError(f"{src} cannot be prepared for INT8 quantization: "
                             f"{message}") from None
    finally:
        staged.unlink(missing_ok=True)
    return out


def count_convolutions(model: onnx.ModelProto) -> int:
    """The convolutions in ``model``'s graph."""
    return sum(node.op_type == "Conv" for node in model.graph.node)


def fp32_nodes(model: onnx.ModelProto, stem: int = 0) -> list[str]:
    """The names of the nodes left in FP32: the decode tail with each branch's last
    convolution, and the first ``stem`` convolutions with every node before the next one.

    The graph's nodes are in topological order (ONNX requires it), so one pass from the end
    finds which nodes still lead to a convolution.
    """
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    leads_to_conv: dict[int, bool] = {}
    for node in reversed(model.graph.node):
        leads_to_conv[id(node)] = any(
            after.op_type == "Conv" or leads_to_conv.get(id(after), False)
            for output in node.output for after in consumers.get(output, []))
    kept = [node.name for node in model.graph.node if not leads_to_conv[id(node)]]
    if stem > 0:
        seen = 0
        for node in model.graph.node:
            if node.op_type == "Conv":
                if seen == stem:
                    break
                seen += 1
            kept.append(node.name)
    return list(dict.fromkeys(kept))


def quantize(prepared: str | Path, out: str | Path, cache: str | Path,
             exclude: Sequence[str] = (), inputs: Sequence[np.ndarray] | None = None) -> Path:
    """Write the INT8 (QDQ) model of ``prepared`` to ``out``, leaving ``exclude`` in FP32.

    Args:
        prepared: from :func:`prepare`.
        out: the quantized file.
        cache: the tensors' ranges (JSON), measured here from ``inputs`` when the file is not
            there yet.
        exclude: node names to keep in FP32 (:func:`fp32_nodes`).
        inputs: preprocessed float32 ``[1, 3, H, W]`` calibration batches; only needed while
            ``cache`` does not exist.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    reader = None if Path(cache).is_file() else _Reader(_input_name(prepared), inputs or [])
    with _quiet():
        quantize_static(str(prepared), str(out), reader, quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude),
                        calibrate_method=CalibrationMethod.MinMax,
                        calibration_cache_path=str(cache))
    return Path(out)


def _input_name(path: str | Path) -> str:
    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    return next(value.name for value in model.graph.input if value.name not in initializers)


class _Reader:
    """ONNX Runtime's calibration data reader over a list of preprocessed batches."""

    def __init__(self, input_name: str, inputs: Sequence[np.ndarray]) -> None:
        self._batches = iter(inputs)
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._name: batch}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's quantization tools log advice through the root logger; a detstream
    command shows its own lines instead."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


@dataclass(frozen=True)
class Quantized:
    """The INT8 model :func:`quantize_model` chose.

    Attributes:
        path: the quantized file.
        stem: its first convolutions left in FP32 (besides the decode tail).
        sqnr_db: for each stem tried, the raw output's signal to quantization noise ratio on
            the calibration frames, in dB.
    """

    path: Path
    stem: int
    sqnr_db: dict[int, float]


def quantize_model(prepared: str | Path, folder: str | Path, inputs: Sequence[np.ndarray],
                   log: Callable[[str], None] | None = None) -> Quantized:
    """Quantize ``prepared`` (from :func:`prepare`) into ``folder`` with the smallest FP32
    stem the calibration ``inputs`` find good enough (:data:`MIN_SQNR_DB`).

    Args:
        prepared: the prepared FP32 model.
        folder: where the candidates and the ranges' cache are written.
        inputs: preprocessed float32 ``[1, 3, H, W]`` calibration batches.
        log: progress lines.
    """
    folder = Path(folder)
    graph = onnx.load(str(prepared))
    convolutions = count_convolutions(graph)
    stems = [stem for stem in FP32_STEMS if stem == 0 or stem < convolutions // 2]
    probe = list(inputs[:SQNR_FRAMES])
    reference = _outputs(prepared, probe)
    tried: dict[int, float] = {}
    paths: dict[int, Path] = {}
    for stem in stems:
        paths[stem] = quantize(prepared, folder / f"int8-stem{stem}.onnx", folder / "ranges.json",
                               fp32_nodes(graph, stem), inputs)
        tried[stem] = round(sqnr_db(reference, _outputs(paths[stem], probe)), 2)
        if log is not None:
            log(f"INT8 with {stem_words(stem)} in FP32: output SQNR {tried[stem]:.1f} dB on "
                f"{len(probe)} calibration frames")
        if tried[stem] >= MIN_SQNR_DB:
            break
    stem = next((s for s in tried if tried[s] >= MIN_SQNR_DB), max(tried, key=tried.get))
    return Quantized(paths[stem], stem, tried)


def stem_words(stem: int) -> str:
    """What stays in FP32 with ``stem``, in words."""
    if stem == 0:
        return "the decode tail"
    return f"the decode tail and the first {stem} convolutions"


def sqnr_db(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> float:
    """Signal to noise ratio of ``candidate`` against ``reference`` over all outputs, in dB
    (999 when they are equal)."""
    signal = sum(float(np.square(r.astype(np.float64)).sum()) for r in reference)
    noise = sum(float(np.square(r.astype(np.float64) - c).sum())
                for r, c in zip(reference, candidate, strict=True))
    if noise == 0.0:
        return 999.0  # identical outputs
    return float(10.0 * np.log10(max(signal, 1e-30) / noise))


def _outputs(path: str | Path, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The first output of ``path`` for each input, in onnxruntime on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: batch})[0] for batch in inputs]
