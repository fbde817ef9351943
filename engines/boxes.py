"""Box formats, areas and IoU: the one place this maths is written.

Formats, all in pixels:

- ``xyxy``: left, top, right, bottom. detstream's own (:class:`~detstream.engines.spec.Detections`):
  right and bottom are *exclusive* edges, so a box's width is ``x2 - x1`` (pixel columns
  10..19 are ``x1=10, x2=20``, width 10) and nothing here adds 1.
- ``cxcywh``: centre x, centre y, width, height (YOLO labels, raw ``xywh_scores`` outputs,
  the Kalman filter's position).
- ``tlwh``: left, top, width, height (COCO ``bbox``, MOTChallenge rows,
  :attr:`Detections.xywh <detstream.engines.spec.Detections.xywh>`).
- ``ltrb``: distances from a point (an anchor centre) to the left, top, right and bottom
  edges (the detection head's box branch, the loss's DFL targets).

Conversions, :func:`box_area` and :func:`clip_xyxy` take a numpy array or a torch tensor of
shape [..., 4] and return the same kind with the same dtype (and device); torch is imported only
when a tensor is given. The IoU functions come in the flavour their callers need: numpy
matrices for the tracker (:func:`iou_matrix`: a zero-area union scores 0), torch row pairs for
training (:func:`pairwise_iou`, :func:`complete_iou`: ``eps`` in the denominator keeps gradients
finite).

``torchvision.ops`` has the same maths (``box_convert``, ``box_iou``), with identical results,
but each call converts and dispatches: at the tracker's sizes (a few to a few dozen boxes)
``box_iou`` on arrays costs several times this numpy code, and ``box_convert`` is no faster
than the two tensor operations here, so these stay.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

#: A numpy array or a torch tensor of boxes; functions return the kind they are given.
Boxes = TypeVar("Boxes", np.ndarray, "torch.Tensor")


def _join(left: Boxes, right: Boxes) -> Boxes:
    """Concatenate two [..., 2] halves into [..., 4]."""
    if isinstance(left, np.ndarray):
        return np.concatenate((left, right), axis=-1)
    import torch

    return torch.cat((left, right), dim=-1)


def box_area(boxes: Boxes) -> Boxes:
    """Areas of ``xyxy`` boxes: [..., 4] → [...] (``(x2 - x1) * (y2 - y1)``)."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def cxcywh_to_xyxy(boxes: Boxes) -> Boxes:
    """Centre and size to corners: [..., 4] ``cx, cy, w, h`` → [..., 4] ``xyxy``."""
    centre, half = boxes[..., :2], boxes[..., 2:] / 2
    return _join(centre - half, centre + half)


def xyxy_to_cxcywh(boxes: Boxes) -> Boxes:
    """Corners to centre and size: [..., 4] ``xyxy`` → [..., 4] ``cx, cy, w, h``
    (``cx = x1 + w / 2``)."""
    size = boxes[..., 2:] - boxes[..., :2]
    return _join(boxes[..., :2] + size / 2, size)


def xyxy_to_tlwh(boxes: Boxes) -> Boxes:
    """Corners to top-left and size: [..., 4] ``xyxy`` → [..., 4] ``x, y, w, h``."""
    return _join(boxes[..., :2], boxes[..., 2:] - boxes[..., :2])


def tlwh_to_xyxy(boxes: Boxes) -> Boxes:
    """Top-left and size to corners: [..., 4] ``x, y, w, h`` → [..., 4] ``xyxy``."""
    return _join(boxes[..., :2], boxes[..., :2] + boxes[..., 2:])


def ltrb_to_xyxy(distances: Boxes, points: Boxes) -> Boxes:
    """Edge distances [..., 4] around ``points`` [..., 2] → [..., 4] ``xyxy``."""
    return _join(points - distances[..., :2], points + distances[..., 2:])


def xyxy_to_ltrb(boxes: Boxes, points: Boxes) -> Boxes:
    """``xyxy`` boxes [..., 4] → [..., 4] distances from ``points`` [..., 2] to their edges."""
    return _join(points - boxes[..., :2], boxes[..., 2:] - points)


def clip_xyxy(boxes: Boxes, width: float, height: float) -> Boxes:
    """``xyxy`` boxes [..., 4] clipped to a ``width`` x ``height`` image: x to [0, width],
    y to [0, height] (the exclusive right/bottom edge may equal the size)."""
    if isinstance(boxes, np.ndarray):
        return np.clip(boxes, 0, np.array([width, height, width, height], boxes.dtype))
    return boxes.clamp(min=0).minimum(boxes.new_tensor([width, height, width, height]))


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overlap areas of ``xyxy`` boxes, broadcast: [..., 4] and [..., 4] → [...]."""
    lt = np.maximum(a[..., :2], b[..., :2])
    rb = np.minimum(a[..., 2:], b[..., 2:])
    size = np.maximum(rb - lt, 0.0)
    return size[..., 0] * size[..., 1]


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Overlap area of every box in ``a`` [N, 4] with every box in ``b`` [M, 4]: [N, M]."""
    return intersection(a[:, None, :], b[None, :, :])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every ``xyxy`` box in ``a`` [N, 4] with every box in ``b`` [M, 4]: [N, M].

    The union is floored at 1e-9, so pairs of zero-area boxes score 0; no boxes on either side
    give an empty float64 [N, M].
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    inter = intersection_matrix(a, b)
    return inter / np.maximum(box_area(a)[:, None] + box_area(b)[None, :] - inter, 1e-9)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """IoU of matching rows of ``xyxy`` boxes, broadcast: float [..., 4] and [..., 4] → [...].

    ``eps`` is added to the union (differentiable everywhere; zero-area pairs score 0).
    """
    iw = (a[..., 2].minimum(b[..., 2]) - a[..., 0].maximum(b[..., 0])).clamp(0)
    ih = (a[..., 3].minimum(b[..., 3]) - a[..., 1].maximum(b[..., 1])).clamp(0)
    inter = iw * ih
    return inter / (box_area(a) + box_area(b) - inter + eps)


def complete_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU (Zheng et al., 2020) of matching rows: float [..., 4] ``xyxy`` → float [...].

    CIoU = IoU − (centre distance² / enclosing diagonal²) − α·v, where v measures the
    difference of aspect ratios and α = v / (1 − IoU + v) is held constant in the gradient.
    (``torchvision.ops.complete_box_iou_loss`` differs in where ``eps`` enters; this is the
    form the detector was trained with.)
    """
    import torch

    pw, ph = pred[..., 2] - pred[..., 0], pred[..., 3] - pred[..., 1] + eps
    tw, th = target[..., 2] - target[..., 0], target[..., 3] - target[..., 1] + eps
    iou = pairwise_iou(pred, target, eps)
    cw = pred[..., 2].maximum(target[..., 2]) - pred[..., 0].minimum(target[..., 0])
    ch = pred[..., 3].maximum(target[..., 3]) - pred[..., 1].minimum(target[..., 1])
    diag2 = cw**2 + ch**2 + eps
    dist2 = ((target[..., 0] + target[..., 2] - pred[..., 0] - pred[..., 2]) ** 2
             + (target[..., 1] + target[..., 3] - pred[..., 1] - pred[..., 3]) ** 2) / 4
    v = (4 / math.pi**2) * (torch.atan(tw / th) - torch.atan(pw / ph)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (dist2 / diag2 + v * alpha)


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each box in ``a`` [N, 4] with the box in the same row of ``b`` [N, 4]: [N]."""
    inter = intersection(a, b)
    return inter / np.maximum(box_area(a) + box_area(b) - inter, 1e-9)
