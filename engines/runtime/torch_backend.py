"""PyTorch backend: FP32 on the CPU, FP16 on CUDA, channels-last, batch norm folded."""

from __future__ import annotations

import torch

from engines.models import Detector
from engines.runtime.base import Backend
from engines.spec import ModelSpec


class TorchBackend(Backend):
    """Run a detstream :class:`Detector` directly.

    Args:
        model: the detector (its weights are used as they are; it is fused and cast here).
        spec: its contract.
        device: ``cpu`` or a CUDA device.
        half: FP16 weights and inputs (default: on CUDA only; the CPU runs FP32).
        threads: intra-op threads on the CPU (``None`` leaves torch's setting).
    """

    name = "torch"

    def __init__(self, model: Detector, spec: ModelSpec, device: str | torch.device = "cpu",
                 half: bool | None = None, threads: int | None = None) -> None:
        self.spec = spec
        self.device = torch.device(device)
        if half is None:
            half = self.device.type == "cuda"
        self.dtype = torch.float16 if half else torch.float32
        self.max_batch = 256
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(max(1, threads))
        model = model.fuse().to(self.device, dtype=self.dtype)
        self.model = model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
        return self.model(batch)
