"""The detstream detector family: CSP backbone, SPPF, PAN neck, decoupled head (strides 8/16/32).

Sizes ``n``, ``s``, ``m`` scale widths and depths; any number of classes. ``forward`` in eval
mode returns the raw layout ``[B, 4 + C, N]`` (box centre x, y, width, height in input pixels,
then per-class sigmoid scores), followed by ``D`` rows of unit-length appearance embedding when
the model has an embedding head (``[B, 4 + C + D, N]``); in train mode a
:class:`~detstream.engines.models.head.HeadOutput`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from detstream.engines.models.blocks import SPPF, ConvBnAct, CSPStage
from detstream.engines.models.embed import EmbedHead
from detstream.engines.models.head import DetectHead, HeadOutput

STRIDES: tuple[int, ...] = (8, 16, 32)


@dataclass(frozen=True)
class Scale:
    """Width/depth multipliers of one model size."""

    depth: float
    width: float
    max_channels: int

    def channels(self, base: int) -> int:
        c = min(base, self.max_channels) * self.width
        return max(8, int(round(c / 8)) * 8)

    def repeats(self, base: int) -> int:
        return max(1, round(base * self.depth))


SCALES: dict[str, Scale] = {
    "n": Scale(depth=0.33, width=0.25, max_channels=1024),
    "s": Scale(depth=0.33, width=0.50, max_channels=1024),
    "m": Scale(depth=0.67, width=0.75, max_channels=768),
}


class Backbone(nn.Module):
    """CSP backbone: a stride-2 stem and four stride-2 stages; returns P3, P4, P5."""

    def __init__(self, scale: Scale) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (scale.channels(c) for c in (64, 128, 256, 512, 1024))
        self.stem = ConvBnAct(3, c1, 3, 2)
        self.stage2 = nn.Sequential(ConvBnAct(c1, c2, 3, 2), CSPStage(c2, c2, scale.repeats(3)))
        self.stage3 = nn.Sequential(ConvBnAct(c2, c3, 3, 2), CSPStage(c3, c3, scale.repeats(6)))
        self.stage4 = nn.Sequential(ConvBnAct(c3, c4, 3, 2), CSPStage(c4, c4, scale.repeats(6)))
        self.stage5 = nn.Sequential(ConvBnAct(c4, c5, 3, 2), CSPStage(c5, c5, scale.repeats(3)),
                                    SPPF(c5, c5))
        self.out_channels = (c3, c4, c5)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        p3 = self.stage3(self.stage2(self.stem(x)))
        p4 = self.stage4(p3)
        return [p3, p4, self.stage5(p4)]


class PAN(nn.Module):
    """Path-aggregation neck: top-down fusion, then bottom-up fusion."""

    def __init__(self, channels: tuple[int, int, int], scale: Scale) -> None:
        super().__init__()
        c3, c4, c5 = channels
        n = scale.repeats(3)
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.top_down4 = CSPStage(c5 + c4, c4, n, shortcut=False)
        self.top_down3 = CSPStage(c4 + c3, c3, n, shortcut=False)
        self.down3 = ConvBnAct(c3, c3, 3, 2)
        self.bottom_up4 = CSPStage(c3 + c4, c4, n, shortcut=False)
        self.down4 = ConvBnAct(c4, c4, 3, 2)
        self.bottom_up5 = CSPStage(c4 + c5, c5, n, shortcut=False)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = features
        t4 = self.top_down4(torch.cat([self.up(p5), p4], dim=1))
        n3 = self.top_down3(torch.cat([self.up(t4), p3], dim=1))
        n4 = self.bottom_up4(torch.cat([self.down3(n3), t4], dim=1))
        n5 = self.bottom_up5(torch.cat([self.down4(n4), p5], dim=1))
        return [n3, n4, n5]


class Detector(nn.Module):
    """A YOLO-style anchor-free detector.

    Args:
        size: ``n``, ``s`` or ``m``.
        num_classes: number of classes.
        reg_max: bins of the box side-distance distributions.
        embed_dim: size of the per-box appearance embedding; 0 builds no embedding head.
    """

    def __init__(self, size: str = "n", num_classes: int = 80, reg_max: int = 16,
                 embed_dim: int = 0) -> None:
        super().__init__()
        if size not in SCALES:
            raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(SCALES)}")
        scale = SCALES[size]
        self.size = size
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.stride = max(STRIDES)
        self.backbone = Backbone(scale)
        self.neck = PAN(self.backbone.out_channels, scale)
        self.head = DetectHead(num_classes, self.backbone.out_channels, STRIDES, reg_max)
        self.embed_dim = int(embed_dim)
        self.embed = (EmbedHead(self.backbone.out_channels, STRIDES, embed_dim) if embed_dim
                      else None)

    def forward(self, x: torch.Tensor) -> HeadOutput | torch.Tensor:
        """``x``: float [B, 3, H, W], RGB in [0, 1], H and W multiples of 32."""
        features = self.neck(self.backbone(x))
        if torch.is_autocast_enabled(x.device.type):
            # Mixed-precision training: the head's logits feed the loss directly, and bf16's
            # 8-bit mantissa there cost an overfit run a tenth of its mAP50; keep it float32.
            with torch.autocast(x.device.type, enabled=False):
                return self._heads([f.float() for f in features], x.float())
        return self._heads(features, x)

    def _heads(self, features: list[torch.Tensor], image: torch.Tensor
               ) -> HeadOutput | torch.Tensor:
        out = self.head(features)
        if self.embed is None:
            return out
        embed = self.embed(features, image)
        if isinstance(out, HeadOutput):
            return out._replace(embed=embed)
        return torch.cat([out, embed.transpose(1, 2)], dim=1)

    def detector_parameters(self) -> list[nn.Parameter]:
        """The parameters that detect (everything but the embedding head): what
        ``--freeze detector`` holds still while the embedding learns."""
        embed = {id(p) for p in self.embed.parameters()} if self.embed is not None else set()
        return [p for p in self.parameters() if id(p) not in embed]


    def fuse(self) -> Detector:
        """Fold every batch norm into its convolution for faster inference; returns self.

        The model must be in eval mode and stays so (a fused model cannot be trained).
        """
        self.eval()
        for module in self.modules():
            if isinstance(module, ConvBnAct):
                module.fuse()
        return self


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gflops(model: nn.Module, imgsz: int) -> float:
    """Forward GFLOPs (multiply and add counted separately) for one ``imgsz`` x ``imgsz`` image."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.zeros(1, 3, imgsz, imgsz, device=param.device, dtype=param.dtype)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() / 1e9
    finally:
        model.train(was_training)
