"""The detection loss: BCE on classes, CIoU on boxes, distribution focal loss on box sides, and
for models with an embedding head an identity term
(:class:`~detstream.engines.train.identity.IdentityLoss`).

Targets come from :class:`~detstream.engines.train.assigner.TaskAlignedAssigner`; every term is
weighted
by the soft target scores and normalised by their sum, so crowded and empty images balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.nn import functional as F

from detstream.engines.boxes import complete_iou, ltrb_to_xyxy, xyxy_to_ltrb
from detstream.engines.models.head import HeadOutput
from detstream.engines.train.assigner import Assignment, TaskAlignedAssigner
from detstream.engines.train.identity import IdentityLoss


def pad_targets(targets: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                  torch.Tensor]:
    """Rows ``(image, class, x1, y1, x2, y2)`` [M, 6] → labels int64 [B, K], boxes [B, K, 4],
    valid bool [B, K] with K the most boxes in one image."""
    labels, boxes, valid, _ = _pad(targets, batch_size)
    return labels, boxes, valid


def _pad(targets: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor,
                                                          torch.Tensor, torch.Tensor]:
    """:func:`pad_targets` plus identities int64 [B, K] from a seventh column (-1 without)."""
    device = targets.device
    if targets.numel() == 0:
        return (torch.zeros(batch_size, 0, dtype=torch.long, device=device),
                torch.zeros(batch_size, 0, 4, device=device),
                torch.zeros(batch_size, 0, dtype=torch.bool, device=device),
                torch.zeros(batch_size, 0, dtype=torch.long, device=device))
    image = targets[:, 0].long()
    counts = torch.bincount(image, minlength=batch_size)
    k = int(counts.max())
    order = torch.argsort(image, stable=True)
    image = image[order]
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(image), device=device) - starts[image]
    labels = torch.zeros(batch_size, k, dtype=torch.long, device=device)
    boxes = torch.zeros(batch_size, k, 4, device=device)
    valid = torch.zeros(batch_size, k, dtype=torch.bool, device=device)
    labels[image, slot] = targets[order, 1].long()
    boxes[image, slot] = targets[order, 2:6].float()
    valid[image, slot] = True
    identities = torch.full((batch_size, k), -1, dtype=torch.long, device=device)
    if targets.shape[1] > 6:
        identities[image, slot] = targets[order, 6].long()
    return labels, boxes, valid, identities


@dataclass
class DetectionLoss:
    """Loss of one batch.

    Attributes:
        num_classes: classes of the model.
        reg_max: bins of the side-distance distributions.
        box_gain, cls_gain, dfl_gain: weights of the three detection terms.
        assigner: the label assigner.
        identity: the identity term for a model with an embedding head (targets then carry
            an identity column); None trains detection only.
        id_gain: weight of the identity term.
    """

    num_classes: int
    reg_max: int = 16
    box_gain: float = 7.5
    cls_gain: float = 0.5
    dfl_gain: float = 1.5
    assigner: TaskAlignedAssigner = field(default_factory=TaskAlignedAssigner)
    identity: IdentityLoss | None = None
    id_gain: float = 1.0

    def __call__(self, out: HeadOutput, targets: torch.Tensor) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
        """Compute the loss.

        Args:
            out: the model's training-mode output.
            targets: float [M, 6] rows ``(image index, class, x1, y1, x2, y2)``, input pixels;
                [M, 7] with the identity index last when training identities.

        Returns:
            ``(total, parts)``: the scalar to back-propagate (summed over the batch) and the
            detached per-image ``[box, cls, dfl, id]`` terms for logging (id is 0 when not
            training identities).
        """
        b, n, _ = out.cls.shape
        box_logits = out.box.float()
        cls_logits = out.cls.float()
        bins = torch.arange(self.reg_max, device=box_logits.device, dtype=torch.float32)
        probs = box_logits.view(b, n, 4, self.reg_max).softmax(-1)
        distances = (probs * bins).sum(-1)  # stride units
        pred_boxes = ltrb_to_xyxy(distances, out.anchors / out.strides) * out.strides

        labels, boxes, valid, identities = _pad(targets.to(box_logits.device), b)
        assigned = self.assigner(cls_logits.detach().sigmoid(), pred_boxes.detach(),
                                 out.anchors, labels, boxes, valid)
        score_sum = _global_normalizer(assigned.scores.sum())

        cls_loss = F.binary_cross_entropy_with_logits(cls_logits, assigned.scores,
                                                      reduction="sum") / score_sum
        fg = assigned.foreground
        if bool(fg.any()):
            weight = assigned.scores.sum(-1)[fg]
            ciou = complete_iou(pred_boxes[fg], assigned.boxes[fg])
            box_loss = ((1.0 - ciou) * weight).sum() / score_sum
            anchors = (out.anchors / out.strides).unsqueeze(0).expand(b, n, 2)[fg]
            target_boxes = assigned.boxes[fg] / out.strides.unsqueeze(0).expand(b, n, 1)[fg]
            target_ltrb = xyxy_to_ltrb(target_boxes, anchors).clamp(0, self.reg_max - 1 - 0.01)
            dfl = self._dfl(box_logits[fg].view(-1, self.reg_max), target_ltrb.view(-1))
            dfl_loss = (dfl.view(-1, 4).mean(-1) * weight).sum() / score_sum
        else:
            box_loss = box_logits.sum() * 0.0
            dfl_loss = box_logits.sum() * 0.0
        id_loss = box_logits.sum() * 0.0
        if self.identity is not None and out.embed is not None:
            anchors = best_anchor_per_box(assigned)
            owners = identities[anchors[:, 0], assigned.owner[anchors[:, 0], anchors[:, 1]]] \
                if identities.shape[1] else anchors.new_full((len(anchors),), -1)
            # A mean over boxes, like the detection terms' normalised sums, is independent
            # of the batch's size: scaled by b below like the others.
            id_loss = self.identity(out.embed[anchors[:, 0], anchors[:, 1]], owners)
        parts = torch.stack([box_loss * self.box_gain, cls_loss * self.cls_gain,
                             dfl_loss * self.dfl_gain, id_loss * self.id_gain])
        return parts.sum() * b, parts.detach()

    @staticmethod
    def _dfl(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distribution focal loss: cross-entropy toward the two bins around ``target``,
        weighted by closeness. ``logits`` [K, R], ``target`` [K] in [0, R - 1)."""
        left = target.long()
        right = left + 1
        w_left = right.float() - target
        w_right = 1.0 - w_left
        return (F.cross_entropy(logits, left, reduction="none") * w_left
                + F.cross_entropy(logits, right, reduction="none") * w_right)


def best_anchor_per_box(assigned: Assignment) -> torch.Tensor:
    """``(image, anchor)`` int64 [K, 2] of each assigned box's best-aligned anchor.

    The identity term reads one embedding per box (as FairMOT reads one per object centre):
    ten positives per box against tens of thousands of identities would make its logits the
    largest tensor of the step, and neighbouring anchors' embeddings come from the same
    features anyway.
    """
    fg = assigned.foreground.nonzero()  # [F, 2]
    if not len(fg):
        return fg
    key = fg[:, 0] * (int(assigned.owner.max()) + 1) + assigned.owner[fg[:, 0], fg[:, 1]]
    quality = assigned.scores.sum(-1)[fg[:, 0], fg[:, 1]]
    order = torch.argsort(quality, descending=True, stable=True)
    _, group = torch.unique(key[order], return_inverse=True)
    position = torch.arange(len(order), device=fg.device)
    first = torch.full((int(group.max()) + 1,), len(order), device=fg.device)
    first = first.scatter_reduce(0, group, position, reduce="amin")
    return fg[order[first]]


def _global_normalizer(local_sum: torch.Tensor) -> torch.Tensor:
    """The loss normalizer: the batch's total assigned score, at least 1.

    Under DDP every process normalizes by the *global* total divided by the number of
    processes (as mmdetection's reduce_mean of the average factor), so that the gradients DDP
    averages equal a single process's on the same global batch. Normalizing by each process's
    own total would weight processes with few targets up, and early in training, when the
    total is below 1 and clamped, would even scale the loss with the local batch size.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return local_sum.clamp(min=1.0)
    total = local_sum.detach().clone()
    dist.all_reduce(total)
    return total.clamp(min=1.0) / dist.get_world_size()
