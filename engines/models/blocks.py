"""Building blocks of the detector family: conv-BN-SiLU, CSP stages, fast spatial-pyramid pooling.

Only plain convolutions, batch norm, SiLU, max pooling, concatenation and nearest upsampling:
ops that ONNX and TensorRT support natively, with no data-dependent control flow.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBnAct(nn.Module):
    """Conv2d (no bias) → BatchNorm2d → SiLU, with 'same' padding for odd kernels."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def fuse(self) -> None:
        """Fold the batch norm into the convolution (inference only; eval-mode statistics)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = torch.nn.utils.fusion.fuse_conv_bn_eval(self.conv.eval(), self.bn.eval())
            self.bn = nn.Identity()


class Bottleneck(nn.Module):
    """Two 3x3 convolutions with an optional residual connection."""

    def __init__(self, channels: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1 = ConvBnAct(channels, channels, 3)
        self.cv2 = ConvBnAct(channels, channels, 3)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.shortcut else y


class CSPStage(nn.Module):
    """Cross-stage-partial stage: split the channels, run bottlenecks on one half, and keep
    every intermediate output for the final 1x1 fusion (rich gradient paths, few FLOPs)."""

    def __init__(self, c_in: int, c_out: int, depth: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        self.hidden = c_out // 2
        self.cv1 = ConvBnAct(c_in, 2 * self.hidden, 1)
        self.blocks = nn.ModuleList(Bottleneck(self.hidden, shortcut) for _ in range(depth))
        self.cv2 = ConvBnAct((2 + depth) * self.hidden, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).chunk(2, dim=1)
        outs = [a, b]
        for block in self.blocks:
            b = block(b)
            outs.append(b)
        return self.cv2(torch.cat(outs, dim=1))


class SPPF(nn.Module):
    """Spatial-pyramid pooling, fast: three chained 5x5 max-pools (receptive fields 5, 9, 13)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 5) -> None:
        super().__init__()
        hidden = c_in // 2
        self.cv1 = ConvBnAct(c_in, hidden, 1)
        self.pool = nn.MaxPool2d(kernel, stride=1, padding=kernel // 2)
        self.cv2 = ConvBnAct(hidden * 4, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        p1 = self.pool(x)
        p2 = self.pool(p1)
        return self.cv2(torch.cat([x, p1, p2, self.pool(p2)], dim=1))
