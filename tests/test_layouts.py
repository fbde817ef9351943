"""Imported ONNX detectors: each public layout is recognized and decoded to the right boxes,
and an unknown layout is refused with a message naming the supported ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from detstream.engines.errors import UserInputError
from detstream.engines.predict import Predictor
from detstream.engines.runtime.select import open_backend
from detstream.engines.zoo.onnx_import import inspect_onnx

SIZE = 64  # grids 8x8 + 4x4 + 2x2 = 84 cells
CELLS = 84
CLASSES = 3


class Constant(nn.Module):
    """An 'ONNX detector' whose output is a fixed tensor (the input only sets the batch)."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("output", output)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.output + images.mean() * 0.0


def _export(tmp_path, output: torch.Tensor, name: str):
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(Constant(output), (torch.zeros(1, 3, SIZE, SIZE),), str(path),
                      input_names=["images"], output_names=["output"], opset_version=17,
                      dynamo=False)
    return path


def _ultralytics() -> torch.Tensor:
    out = torch.zeros(1, 4 + CLASSES, CELLS)
    out[0, :4] = torch.tensor([32.0, 32.0, 4.0, 4.0]).unsqueeze(1)
    out[0, :4, 5] = torch.tensor([20.0, 40.0, 16.0, 8.0])
    out[0, 4 + 2, 5] = 0.9
    return out


def _yolov5() -> torch.Tensor:
    out = torch.zeros(1, 3 * CELLS, 5 + CLASSES)
    out[0, :, :4] = torch.tensor([32.0, 32.0, 4.0, 4.0])
    out[0, 7, :5] = torch.tensor([20.0, 40.0, 16.0, 8.0, 0.9])
    out[0, 7, 5 + 2] = 1.0
    return out


def _yolox() -> torch.Tensor:
    out = torch.zeros(1, CELLS, 5 + CLASSES)
    # Stride-8 cell (gx=2, gy=4): centre (2.5 * 8, 5 * 8) = (20, 40); size 16 x 8.
    out[0, 4 * 8 + 2, :5] = torch.tensor([0.5, 1.0, float(np.log(2.0)), 0.0, 0.9])
    out[0, 4 * 8 + 2, 5 + 2] = 1.0
    return out


@pytest.mark.parametrize("name, make, layout", [
    ("yolov8", _ultralytics, "xywh_scores"),
    ("yolov5", _yolov5, "yolov5"),
    ("yolox", _yolox, "yolox"),
])
def test_foreign_layout_is_recognized_and_decoded(tmp_path, name, make, layout):
    path = _export(tmp_path, make(), name)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\nbird\n")
    spec = inspect_onnx(path, names)
    assert spec.layout == layout and spec.class_names == ("cat", "dog", "bird")
    assert spec.input_size == (SIZE, SIZE)
    if layout == "yolox":  # Megvii's contract: BGR, 0..255, top-left letterbox
        assert (spec.colour, spec.scale, spec.letterbox) == ("bgr", 1.0, "topleft")
    backend = open_backend(path, "onnxruntime", names=names, threads=1)
    # A 128 x 128 frame is halved into the 64 x 64 input (no padding either way).
    (dets,) = Predictor(backend)([np.zeros((128, 128, 3), np.uint8)])
    assert dets.labels == ["bird"]
    np.testing.assert_allclose(dets.boxes, [[24, 72, 56, 88]], atol=1e-3)
    np.testing.assert_allclose(dets.scores, [0.9], atol=1e-6)


def test_names_count_must_match(tmp_path):
    path = _export(tmp_path, _ultralytics(), "yolov8")
    names = tmp_path / "names.txt"
    names.write_text("one\ntwo\n")
    with pytest.raises(UserInputError, match="predicts 3 classes but 2 names"):
        inspect_onnx(path, names)


def test_without_names_classes_are_numbered(tmp_path):
    spec = inspect_onnx(_export(tmp_path, _ultralytics(), "yolov8"))
    assert spec.class_names == ("class0", "class1", "class2")


def test_unknown_layout_names_the_supported_ones(tmp_path):
    path = _export(tmp_path, torch.zeros(1, 10, 7), "odd")
    with pytest.raises(UserInputError, match=r"unknown output layout \[1, 10, 7\].*YOLOv8/YOLO11"
                                             r".*YOLOv5/YOLOv7.*YOLOX"):
        inspect_onnx(path)


def test_corrupt_onnx_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(UserInputError, match="not a readable ONNX file"):
        inspect_onnx(path)
