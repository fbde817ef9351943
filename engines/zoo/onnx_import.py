"""Recognize an ONNX detector's output layout and preprocessing contract.

detstream exports carry their :class:`ModelSpec` in the metadata. Foreign files are recognized
by their output shape (and metadata where present):

- ``xywh_scores`` - Ultralytics YOLOv8 / YOLO11: ``[B, 4 + C, N]``, N the anchor count;
- ``yolox`` - Megvii YOLOX: ``[B, N, 5 + C]`` with N exactly the grid cells of strides 8/16/32;
  BGR input in 0..255, top-left letterbox;
- ``yolov5`` - YOLOv5 / YOLOv7: ``[B, N, 5 + C]`` with N = 3 anchors per grid cell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from detstream.engines.errors import UserInputError
from detstream.engines.export.metadata import (
    load_onnx,
    names_from_metadata,
    read_metadata,
    read_names_file,
    spec_from_metadata,
)
from detstream.engines.spec import LAYOUTS, ModelSpec
from detstream.engines.zoo.coco import COCO80

STRIDES = (8, 16, 32)


def _cells(height: int, width: int) -> int:
    return sum((height // s) * (width // s) for s in STRIDES)


def _dims(value_info) -> list[int | None]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def detect_layout(input_hw: tuple[int, int], output_shape: list[int | None]) -> tuple[str, int]:
    """``(layout, num_classes)`` for a model with input (height, width) and this output shape.

    Raises:
        UserInputError: the shape fits none of the supported layouts.
    """
    height, width = input_hw
    cells = _cells(height, width)
    if len(output_shape) == 3 and None not in output_shape[1:]:
        _, a, b = output_shape
        if b == cells and a > 4:
            return "xywh_scores", a - 4
        if a == cells and b > 5:
            return "yolox", b - 5
        if a == 3 * cells and b > 5:
            return "yolov5", b - 5
    raise UserInputError(
        f"unknown output layout {output_shape} for input {width}x{height}; supported: "
        f"Ultralytics YOLOv8/YOLO11 [B, 4+C, {cells}], YOLOv5/YOLOv7 [B, {3 * cells}, 5+C], "
        f"YOLOX [B, {cells}, 5+C]")


def inspect_onnx(path: str | Path, names: str | Path | None = None,
                 log: Callable[[str], None] | None = None,
                 coco_fallback: bool = True) -> ModelSpec:
    """The :class:`ModelSpec` of an ONNX detector: from detstream metadata, or recognized.

    A recognized file with 80 classes and no names of its own gets the COCO names (a note
    goes to ``log``); other counts get ``class0``, ``class1``...

    Args:
        path: the ``.onnx`` file.
        names: optional class-names file overriding the file's own names.
        log: where the note about guessed names goes.
        coco_fallback: give 80-class files without names the COCO names (else ``classN``).
    """
    model = load_onnx(path)
    metadata = read_metadata(model)
    spec = spec_from_metadata(metadata)
    override = read_names_file(names) if names is not None else None
    if spec is not None:
        return replace(spec, class_names=override) if override else spec

    inputs = [i for i in model.graph.input
              if i.name not in {init.name for init in model.graph.initializer}]
    if len(inputs) != 1 or len(model.graph.output) < 1:
        raise UserInputError(f"{path}: expected one image input and an output, found "
                             f"{len(inputs)} inputs and {len(model.graph.output)} outputs")
    in_shape = _dims(inputs[0])
    if len(in_shape) != 4 or in_shape[1] != 3 or None in in_shape[2:]:
        raise UserInputError(f"{path}: input shape {in_shape} is not [B, 3, H, W] with a fixed "
                             "H and W")
    height, width = int(in_shape[2]), int(in_shape[3])
    layout, num_classes = detect_layout((height, width), _dims(model.graph.output[0]))
    class_names = override or names_from_metadata(metadata)
    if class_names is None and coco_fallback and num_classes == len(COCO80):
        class_names = COCO80
        if log is not None:
            log(f"note: {Path(path).name} has 80 classes and no names; using the COCO names "
                "(pass --names FILE if it was trained on other classes)")
    if class_names is None:
        class_names = tuple(f"class{i}" for i in range(num_classes))
    if len(class_names) != num_classes:
        raise UserInputError(f"{path} predicts {num_classes} classes but {len(class_names)} "
                             "names were given; pass a matching --names FILE")
    common = {"name": Path(path).stem, "class_names": class_names,
              "input_size": (height, width), "layout": layout}
    if layout == "yolox":
        # Megvii's exports: BGR, raw 0..255 values, image pasted at the top-left.
        return ModelSpec(**common, colour="bgr", scale=1.0, letterbox="topleft")
    return ModelSpec(**common)


__all__ = ["LAYOUTS", "detect_layout", "inspect_onnx"]
