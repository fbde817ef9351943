"""Optimizer with weight-decay groups, and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def build_optimizer(model: nn.Module, name: str, lr: float, momentum: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW with three groups: conv/linear weights (decayed), norm weights
    and biases (not decayed: decaying them only fights the normalisation)."""
    decay, no_decay, biases = [], [], []
    for module in model.modules():
        for pname, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if pname == "bias":
                biases.append(param)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
                no_decay.append(param)
            else:
                decay.append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "name": "weights"},
        {"params": no_decay, "weight_decay": 0.0, "name": "norms"},
        {"params": biases, "weight_decay": 0.0, "name": "biases"},
    ]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999))
    raise ValueError(f"unknown optimizer {name!r}; choose sgd or adamw")


@dataclass(frozen=True)
class Schedule:
    """Linear warm-up, then cosine decay from ``lr0`` to ``lr0 * lrf`` over the epochs.

    During warm-up, biases start high (``warmup_bias_lr``) and come down while the other groups
    ramp up from zero, and momentum rises from ``warmup_momentum``.
    """

    lr0: float
    lrf: float
    epochs: int
    warmup_iters: int
    momentum: float
    warmup_momentum: float = 0.8
    warmup_bias_lr: float = 0.1

    def epoch_factor(self, epoch: float) -> float:
        """Cosine factor at a (fractional) epoch: 1 at the start, ``lrf`` at the end."""
        progress = min(max(epoch / max(self.epochs, 1), 0.0), 1.0)
        return self.lrf + (1 - self.lrf) * 0.5 * (1 + math.cos(math.pi * progress))

    def apply(self, optimizer: torch.optim.Optimizer, iteration: int, epoch: float) -> None:
        """Set every group's learning rate (and momentum in warm-up) for this iteration."""
        target = self.lr0 * self.epoch_factor(epoch)
        warm = iteration < self.warmup_iters
        t = iteration / max(self.warmup_iters, 1)
        for group in optimizer.param_groups:
            if warm:
                start = self.warmup_bias_lr if group.get("name") == "biases" else 0.0
                group["lr"] = start + (target - start) * t
            else:
                group["lr"] = target
            momentum = (self.warmup_momentum + (self.momentum - self.warmup_momentum) * t
                        if warm else self.momentum)
            if "momentum" in group:
                group["momentum"] = momentum
            elif "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
