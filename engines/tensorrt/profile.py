"""What an engine for an ONNX file takes: its input, outputs and optimization profile.

Read from the ONNX graph (no TensorRT needed), so the engine's cache key is known before
anything is built, and ``detstream build`` and ``open_backend`` derive the same profile from
the same rule: a fixed batch dimension in the file is kept as it is (min = opt = max), a
dynamic one covers 1..max_batch, optimised for max_batch. Fixed dimensions cannot be widened by
a profile (TensorRT's builder rejects a profile that disagrees with a static input dimension),
so an imported model with a fixed batch of 1 gets an engine of batch 1 whatever was asked, and
the backend's ``max_batch`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from detstream.engines.errors import UserInputError
from detstream.engines.export.metadata import load_onnx


@dataclass(frozen=True)
class EngineIO:
    """The tensors and shape profile of an engine built from one ONNX file.

    Attributes:
        input_name: the image input.
        output_names: every output, in the file's order; the first is the detection output
            (the one a model's ``spec.layout`` describes).
        batch: the optimization profile's (min, opt, max) batch.
        input_size: (height, width), fixed in the file.
        fixed_batch: the file fixes the batch dimension (``batch`` is then (b, b, b)).
    """

    input_name: str
    output_names: tuple[str, ...]
    batch: tuple[int, int, int]
    input_size: tuple[int, int]
    fixed_batch: bool


def _dim(dim) -> int | None:
    """A fixed dimension's size, or ``None`` for a named or unknown one."""
    return int(dim.dim_value) if dim.HasField("dim_value") and dim.dim_value > 0 else None


def engine_io(onnx_path: str | Path, max_batch: int) -> EngineIO:
    """The engine's tensors and profile for ``onnx_path`` when batches up to ``max_batch`` are
    wanted (see the module doc for the rule)."""
    if max_batch < 1:
        raise UserInputError(f"the batch size must be at least 1, got {max_batch}")
    model = load_onnx(onnx_path)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise UserInputError(f"{onnx_path}: expected one input image tensor, found "
                             f"{len(inputs)} inputs")
    dims = [_dim(d) for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[2] is None or dims[3] is None:
        raise UserInputError(f"{onnx_path}: input shape {dims} is not [B, 3, H, W] with a fixed "
                             "height and width; export it with a fixed input size")
    outputs = tuple(value.name for value in model.graph.output)
    if not outputs:
        raise UserInputError(f"{onnx_path} has no outputs")
    fixed = dims[0]
    batch = (fixed, fixed, fixed) if fixed is not None else (1, max_batch, max_batch)
    return EngineIO(inputs[0].name, outputs, batch, (dims[2], dims[3]), fixed is not None)
