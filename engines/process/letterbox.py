"""Letterbox: resize keeping the aspect ratio, then pad to the model's input size.

Returns what is needed to undo it (:class:`Letterbox`), so boxes found in the model's input
map back to frame pixels exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detstream.engines.boxes import clip_xyxy


@dataclass(frozen=True)
class Letterbox:
    """How a frame was placed in the model input.

    Attributes:
        ratio: scale applied to the frame (input px per frame px).
        pad_x, pad_y: offset of the resized frame's top-left corner in the input, in pixels.
        frame_width, frame_height: size of the original frame.
    """

    ratio: float
    pad_x: float
    pad_y: float
    frame_width: int
    frame_height: int

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Map ``xyxy`` boxes from input pixels to frame pixels, clipped to the frame."""
        out = np.asarray(boxes, np.float32).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.ratio
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.ratio
        return clip_xyxy(out, self.frame_width, self.frame_height)

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Map ``xyxy`` boxes from frame pixels to input pixels."""
        out = np.asarray(boxes, np.float32).copy()
        out[:, [0, 2]] = out[:, [0, 2]] * self.ratio + self.pad_x
        out[:, [1, 3]] = out[:, [1, 3]] * self.ratio + self.pad_y
        return out


def fit(height: int, width: int, size: tuple[int, int], align: str = "center",
        scale_up: bool = True) -> tuple[float, int, int, int, int]:
    """Where a ``width`` x ``height`` frame lands in an input of ``size`` = (height, width).

    Returns:
        ``(ratio, new_width, new_height, pad_x, pad_y)``: the scale, the resized frame's size
        and its top-left corner in the input (shared by the CPU and GPU letterbox).
    """
    th, tw = size
    ratio = min(th / height, tw / width)
    if not scale_up:
        ratio = min(ratio, 1.0)
    nw, nh = max(1, int(round(width * ratio))), max(1, int(round(height * ratio)))
    if align == "center":
        pad_x, pad_y = (tw - nw) // 2, (th - nh) // 2
    elif align == "topleft":
        pad_x = pad_y = 0
    else:
        raise ValueError(f"letterbox align must be 'center' or 'topleft', got {align!r}")
    return ratio, nw, nh, pad_x, pad_y


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int = 114,
              align: str = "center", scale_up: bool = True,
              out: np.ndarray | None = None) -> tuple[np.ndarray, Letterbox]:
    """Fit ``image`` (uint8 [H, W, 3]) into ``size`` = (height, width).

    Args:
        image: the frame, any channel order (kept as is).
        size: target (height, width).
        pad_value: value of the padding.
        align: ``center`` (Ultralytics) or ``topleft`` (YOLOX).
        scale_up: allow enlarging frames smaller than the input.
        out: optional preallocated uint8 [height, width, 3] buffer to write into.

    Returns:
        ``(padded, info)``: the uint8 [height, width, 3] input image and how to undo it.
    """
    h, w = image.shape[:2]
    th, tw = size
    ratio, nw, nh, pad_x, pad_y = fit(h, w, size, align, scale_up)
    if out is None:
        out = np.empty((th, tw, 3), np.uint8)
    out[:] = pad_value
    region = out[pad_y:pad_y + nh, pad_x:pad_x + nw]
    resize(image, (nw, nh), dst=region)
    return out, Letterbox(ratio, float(pad_x), float(pad_y), w, h)


def resize(image: np.ndarray, size: tuple[int, int], dst: np.ndarray | None = None
           ) -> np.ndarray:
    """Resize ``image`` to ``size`` = (width, height) the way every model input is made.

    Enlarging is bilinear. Shrinking averages areas: OpenCV's INTER_AREA when the frame is
    less than twice the size; from twice and up (720p and larger into a 416 or 640 input),
    bilinear to twice the size and then 2x2 averaging. That is within 0.4 grey levels on
    average of INTER_AREA, whose general path cost 6.9 ms of CPU for 1920x1080 into 416x234
    here against 0.9 ms (measured in BENCHMARKS.md, "Lean stages").
    """
    nw, nh = size
    h, w = image.shape[:2]
    if (nw, nh) == (w, h):
        if dst is None:
            return image.copy()
        dst[:] = image
        return dst
    if nw > w or nh > h:
        return cv2.resize(image, (nw, nh), dst=dst, interpolation=cv2.INTER_LINEAR)
    if w < 2 * nw or h < 2 * nh:
        return cv2.resize(image, (nw, nh), dst=dst, interpolation=cv2.INTER_AREA)
    double = cv2.resize(image, (2 * nw, 2 * nh), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(double, (nw, nh), dst=dst, interpolation=cv2.INTER_AREA)
