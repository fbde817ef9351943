"""Export a detstream detector to ONNX (FP32 or FP16, fixed or dynamic batch) with its contract
in the file's metadata."""

from __future__ import annotations

import copy
import warnings
from dataclasses import replace
from pathlib import Path

import onnx
import torch

from detstream.engines.cache import atomic_output
from detstream.engines.errors import UserInputError
from detstream.engines.export.metadata import write_metadata
from detstream.engines.models import Detector
from detstream.engines.spec import ModelSpec, check_input_size

OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "output"


def export_onnx(model: Detector, spec: ModelSpec, out: str | Path, imgsz: int | None = None,
                half: bool = False, max_batch: int = 1) -> tuple[Path, ModelSpec]:
    """Write ``model`` as ONNX.

    Args:
        model: the detector (copied; the caller's model is left as it is).
        spec: its contract; the input size becomes ``imgsz`` when given.
        out: the ``.onnx`` file to write (its folder is created).
        imgsz: square input size, a multiple of the model's stride (default: the spec's).
        half: FP16 weights and input; box decoding stays FP32 by explicit casts (see
            :class:`~detstream.engines.models.head.DetectHead`), as a strongly typed TensorRT build
            needs.
        max_batch: 1 for a fixed batch of one; more for a dynamic batch dimension (the
            TensorRT optimization profile then covers 1..max_batch).

    Returns:
        ``(path, spec)``: the file written and the contract it carries.
    """
    out = Path(out)
    size = check_input_size(int(imgsz or spec.input_size[0]), spec.stride)
    if max_batch < 1:
        raise UserInputError(f"the batch size must be at least 1, got {max_batch}")
    spec = replace(spec, input_size=(size, size))
    dtype = torch.float16 if half else torch.float32
    net = copy.deepcopy(model).cpu().float().fuse().to(dtype)
    dummy = torch.zeros(min(max_batch, 2), 3, size, size, dtype=dtype)
    with torch.no_grad():
        net(dummy)  # fills the head's anchor cache: anchors become constants in the graph
    write_traced_onnx(net, dummy, out, spec, {"precision": "fp16" if half else "fp32",
                                              "max_batch": max_batch,
                                              "architecture": model.size})
    return out, spec


def write_traced_onnx(net: torch.nn.Module, dummy: torch.Tensor, out: Path, spec: ModelSpec,
                      extra: dict) -> Path:
    """Trace ``net`` on ``dummy`` into ``out`` (opset 17, TorchScript exporter, a dynamic batch
    when ``extra["max_batch"] > 1``), check it, and write ``spec`` and ``extra`` into its
    metadata. A temporary file of our own is renamed at the end: two processes exporting the
    same cache entry never write into one file, and a reader never sees half a model."""
    dynamic = ({INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
               if extra.get("max_batch", 1) > 1 else None)
    with atomic_output(out) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shapes used as Python values
        torch.onnx.export(net, (dummy,), str(tmp), input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=OPSET,
                          dynamic_axes=dynamic, do_constant_folding=True, dynamo=False)
        graph = onnx.load(str(tmp))
        onnx.checker.check_model(graph)
        write_metadata(graph, spec, extra)
        onnx.save(graph, str(tmp))
    return out
