"""The one small interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from detstream.engines.spec import ModelSpec


class Backend(ABC):
    """A loaded model that turns an input batch into the raw output of ``spec.layout``.

    Attributes:
        name: ``torch``, ``onnxruntime`` or ``tensorrt``.
        spec: the model's contract (class names, input size, layout, preprocessing).
        device: where inputs are expected and raw outputs are returned.
        dtype: dtype of the input batch (float32 or float16).
        max_batch: the largest batch one :meth:`infer` call accepts.
    """

    name: str
    spec: ModelSpec
    device: torch.device
    dtype: torch.dtype
    max_batch: int

    @abstractmethod
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        """Run the model.

        Args:
            batch: [B, 3, H, W] preprocessed input in :attr:`dtype` on :attr:`device`,
                ``B <= max_batch``.

        Returns:
            The raw output (layout ``spec.layout``) as a tensor on :attr:`device`.
        """

    def describe(self) -> str:
        """One line: backend, device, precision (for logs and benchmarks)."""
        precision = "fp16" if self.dtype == torch.float16 else "fp32"
        return f"{self.name} on {self.device} ({precision})"

    def close(self) -> None:
        """Release what the backend holds (sessions, engines, GPU memory)."""
        return None  # most backends free everything when garbage-collected
