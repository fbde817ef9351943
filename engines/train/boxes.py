"""Box maths for training: IoU and complete IoU (CIoU) on ``xyxy`` boxes."""

from __future__ import annotations

import math

import torch


def box_iou_pairwise(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """IoU of matching rows: ``a``, ``b`` float [..., 4] xyxy → float [...]."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter + eps)


def complete_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU (Zheng et al., 2020) of matching rows: float [..., 4] xyxy → float [...].

    CIoU = IoU − (centre distance² / enclosing diagonal²) − α·v, where v measures the
    difference of aspect ratios and α = v / (1 − IoU + v) is held constant in the gradient.
    """
    pw, ph = pred[..., 2] - pred[..., 0], pred[..., 3] - pred[..., 1] + eps
    tw, th = target[..., 2] - target[..., 0], target[..., 3] - target[..., 1] + eps
    iou = box_iou_pairwise(pred, target, eps)
    cw = torch.maximum(pred[..., 2], target[..., 2]) - torch.minimum(pred[..., 0], target[..., 0])
    ch = torch.maximum(pred[..., 3], target[..., 3]) - torch.minimum(pred[..., 1], target[..., 1])
    diag2 = cw**2 + ch**2 + eps
    dist2 = ((target[..., 0] + target[..., 2] - pred[..., 0] - pred[..., 2]) ** 2
             + (target[..., 1] + target[..., 3] - pred[..., 1] - pred[..., 3]) ** 2) / 4
    v = (4 / math.pi**2) * (torch.atan(tw / th) - torch.atan(pw / ph)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (dist2 / diag2 + v * alpha)
