"""Task-aligned label assignment (TOOD, Feng et al., 2021), batched.

For every ground-truth box, the anchors whose centres lie inside it are ranked by the alignment
metric ``score^alpha * IoU^beta`` (the predicted score of the box's class and the IoU of the
predicted box); the top ``k`` become its positives. An anchor claimed by several boxes goes to
the one it overlaps most. Soft targets are the alignment normalised per box so that the best
anchor of each box gets that box's best IoU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from detstream.engines.boxes import pairwise_iou


class Assignment(NamedTuple):
    """Targets per anchor.

    Attributes:
        labels: int64 [B, N] class of the assigned box (0 where background).
        boxes: float [B, N, 4] assigned box, xyxy input pixels.
        scores: float [B, N, C] soft class targets (zero rows for background).
        foreground: bool [B, N] anchors that have a box.
        owner: int64 [B, N] index of the assigned box among the image's ground-truth rows
            (0 where background).
    """

    labels: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    foreground: torch.Tensor
    owner: torch.Tensor


@dataclass(frozen=True)
class TaskAlignedAssigner:
    """Assign ground truth to anchors.

    Attributes:
        topk: positives per box.
        alpha: weight of the classification score in the metric.
        beta: weight of the IoU in the metric.
    """

    topk: int = 10
    alpha: float = 0.5
    beta: float = 6.0
    eps: float = 1e-9

    @torch.no_grad()
    def __call__(self, pred_scores: torch.Tensor, pred_boxes: torch.Tensor,
                 anchors: torch.Tensor, gt_labels: torch.Tensor, gt_boxes: torch.Tensor,
                 gt_valid: torch.Tensor) -> Assignment:
        """Assign.

        Args:
            pred_scores: float [B, N, C] predicted class probabilities (after sigmoid).
            pred_boxes: float [B, N, 4] predicted boxes, xyxy input pixels.
            anchors: float [N, 2] anchor centres, input pixels.
            gt_labels: int64 [B, M] class ids (padding rows arbitrary).
            gt_boxes: float [B, M, 4] xyxy input pixels.
            gt_valid: bool [B, M] which rows are real boxes.
        """
        b, n, c = pred_scores.shape
        m = gt_boxes.shape[1]
        device = pred_scores.device
        if m == 0:
            return Assignment(
                torch.zeros(b, n, dtype=torch.long, device=device),
                torch.zeros(b, n, 4, dtype=pred_boxes.dtype, device=device),
                torch.zeros_like(pred_scores),
                torch.zeros(b, n, dtype=torch.bool, device=device),
                torch.zeros(b, n, dtype=torch.long, device=device),
            )
        # Anchor centres strictly inside each box: [B, M, N].
        ax, ay = anchors[:, 0].view(1, 1, n), anchors[:, 1].view(1, 1, n)
        inside = torch.stack([ax - gt_boxes[..., 0:1], ay - gt_boxes[..., 1:2],
                              gt_boxes[..., 2:3] - ax, gt_boxes[..., 3:4] - ay], dim=-1)
        candidates = (inside.amin(dim=-1) > self.eps) & gt_valid.unsqueeze(-1)

        overlaps = pairwise_iou(gt_boxes.unsqueeze(2), pred_boxes.unsqueeze(1)).clamp(0)
        overlaps = overlaps * candidates
        class_index = gt_labels.clamp(0, c - 1).unsqueeze(-1).expand(b, m, n)
        scores = pred_scores.transpose(1, 2).gather(1, class_index)  # [B, M, N]
        metric = scores.pow(self.alpha) * overlaps.pow(self.beta) * candidates

        k = min(self.topk, n)
        top = metric.topk(k, dim=-1).indices
        chosen = torch.zeros_like(candidates).scatter_(-1, top, True) & candidates

        # One box per anchor: where several claim it, keep the best-overlapping one.
        claims = chosen.sum(dim=1)  # [B, N]
        if bool((claims > 1).any()):
            best = overlaps.argmax(dim=1)  # [B, N]
            only_best = torch.zeros_like(chosen).scatter_(1, best.unsqueeze(1), True)
            chosen = torch.where((claims > 1).unsqueeze(1), only_best & candidates, chosen)
        foreground = chosen.any(dim=1)
        owner = chosen.float().argmax(dim=1)  # [B, N] index of the assigned box

        labels = gt_labels.gather(1, owner)
        boxes = gt_boxes.gather(1, owner.unsqueeze(-1).expand(b, n, 4))
        metric = metric * chosen
        best_metric = metric.amax(dim=-1, keepdim=True)
        best_overlap = (overlaps * chosen).amax(dim=-1, keepdim=True)
        norm = (metric * best_overlap / (best_metric + self.eps)).amax(dim=1)  # [B, N]
        soft = torch.zeros_like(pred_scores)
        soft.scatter_(-1, labels.clamp(0, c - 1).unsqueeze(-1), norm.unsqueeze(-1))
        soft = soft * foreground.unsqueeze(-1)
        labels = torch.where(foreground, labels, torch.zeros_like(labels))
        return Assignment(labels, boxes, soft, foreground, owner * foreground)
