"""Decoupled, anchor-free detection head with distribution focal regression.

Per pyramid level, one branch predicts box side distances as a distribution over ``reg_max``
bins (left, top, right, bottom, in stride units) and another predicts class logits. In eval mode
the head decodes to the common raw layout ``[B, 4 + C, N]``: box centre x, y, width, height in
input pixels, then per-class sigmoid scores.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from detstream.engines.models.blocks import ConvBnAct


class HeadOutput(NamedTuple):
    """Training-mode output.

    Attributes:
        box: float [B, N, 4 * reg_max] side-distance logits.
        cls: float [B, N, C] class logits.
        anchors: float [N, 2] anchor centres in input pixels.
        strides: float [N, 1] stride of each anchor.
        embed: float [B, N, D] raw appearance embeddings, or None for a model without them.
    """

    box: torch.Tensor
    cls: torch.Tensor
    anchors: torch.Tensor
    strides: torch.Tensor
    embed: torch.Tensor | None = None


def make_anchors(shapes: list[tuple[int, int]], strides: tuple[int, ...], device: torch.device,
                 dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres (pixel units, cell centres) and their strides for feature maps of
    ``shapes`` = [(h, w), ...]: float [N, 2] and float [N, 1], row-major per level."""
    points, stride_rows = [], []
    for (h, w), stride in zip(shapes, strides, strict=True):
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * stride
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * stride
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([gx, gy], dim=-1).reshape(-1, 2))
        stride_rows.append(torch.full((h * w, 1), float(stride), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(stride_rows)


class DFL(nn.Module):
    """Expected value of a discrete distribution over ``reg_max`` bins (a fixed 1x1 conv)."""

    def __init__(self, reg_max: int) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.register_buffer("bins", torch.arange(reg_max, dtype=torch.float32), persistent=False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` [B, N, 4 * reg_max] → distances [B, N, 4] in stride units."""
        b, n, _ = logits.shape
        prob = logits.view(b, n, 4, self.reg_max).softmax(dim=-1)
        return (prob * self.bins.to(prob.dtype)).sum(dim=-1)


class DetectHead(nn.Module):
    """The decoupled head over pyramid levels with ``channels`` input channels each."""

    def __init__(self, num_classes: int, channels: tuple[int, ...], strides: tuple[int, ...],
                 reg_max: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.strides = strides
        box_hidden = max(16, channels[0] // 4, 4 * reg_max)
        cls_hidden = max(channels[0], min(num_classes, 100))
        self.box_branches = nn.ModuleList(
            nn.Sequential(ConvBnAct(c, box_hidden, 3), ConvBnAct(box_hidden, box_hidden, 3),
                          nn.Conv2d(box_hidden, 4 * reg_max, 1)) for c in channels)
        self.cls_branches = nn.ModuleList(
            nn.Sequential(ConvBnAct(c, cls_hidden, 3), ConvBnAct(cls_hidden, cls_hidden, 3),
                          nn.Conv2d(cls_hidden, num_classes, 1)) for c in channels)
        self.dfl = DFL(reg_max)
        self.reset_bias()

    def reset_bias(self, image_size: int = 640) -> None:
        """Start with low class confidence (about 5 objects per image) and neutral boxes."""
        for box, cls, stride in zip(self.box_branches, self.cls_branches, self.strides,
                                    strict=True):
            nn.init.constant_(box[-1].bias, 1.0)
            prior = 5.0 / self.num_classes / (image_size / stride) ** 2
            nn.init.constant_(cls[-1].bias, math.log(prior / (1 - prior)))

    def _eval_anchors(self, shapes: list[tuple[int, int]], device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """FP32 anchors for these feature shapes, cached: computed once per input size, and
        constants (not shape arithmetic) when the model is traced for ONNX export."""
        key = (tuple(shapes), str(device))
        cache = self.__dict__.setdefault("_anchor_cache", {})
        if key not in cache:
            if torch.jit.is_tracing():
                raise RuntimeError("run the model once at the export size before tracing it")
            cache[key] = make_anchors(shapes, self.strides, device, torch.float32)
        return cache[key]

    def forward(self, features: list[torch.Tensor]) -> HeadOutput | torch.Tensor:
        boxes, scores, shapes = [], [], []
        for x, box, cls in zip(features, self.box_branches, self.cls_branches, strict=True):
            b, _, h, w = x.shape
            shapes.append((int(h), int(w)))  # plain ints, also while tracing
            boxes.append(box(x).flatten(2))
            scores.append(cls(x).flatten(2))
        box_logits = torch.cat(boxes, dim=2).transpose(1, 2)  # [B, N, 4R]
        cls_logits = torch.cat(scores, dim=2).transpose(1, 2)  # [B, N, C]
        if self.training:
            anchors, strides = make_anchors(shapes, self.strides, box_logits.device,
                                            box_logits.dtype)
            return HeadOutput(box_logits, cls_logits, anchors, strides)
        anchors, strides = self._eval_anchors(shapes, box_logits.device)
        # Decode in FP32 even in a half-precision model (FP16 ONNX / TensorRT engines): the
        # softmax over bins and pixel coordinates up to 640 need more than FP16's 11 bits.
        # In an FP32 model these casts are no-ops.
        box_logits, cls_logits = box_logits.float(), cls_logits.float()
        ltrb = self.dfl(box_logits) * strides  # [B, N, 4] in pixels
        lt, rb = ltrb[..., :2], ltrb[..., 2:]
        centre = anchors + (rb - lt) / 2
        size = lt + rb
        return torch.cat([centre, size, cls_logits.sigmoid()], dim=-1).transpose(1, 2)
