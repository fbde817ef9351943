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
    #: Why this file and precision run, where ``open_backend`` chose between an FP32 ONNX
    #: file and its INT8 copy (``int8: 1.49x faster than fp32 on this CPU with 1 thread``);
    #: ``None`` where nothing was chosen. Run statistics report it.
    precision_choice: str | None = None
    #: Median milliseconds of one batch-1 call, where the precision choice timed this very
    #: file at this backend's thread count (``None``: not timed).
    call_ms: float | None = None

    @property
    def precision(self) -> str:
        """``fp16``, ``fp32`` or ``int8``: what the model computes in (its input may differ:
        an INT8 model takes float32)."""
        return "fp16" if self.dtype == torch.float16 else "fp32"

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
        return f"{self.name} on {self.device} ({self.precision})"

    def info(self) -> dict:
        """What ran, for run statistics: ``describe()``, the precision and why."""
        return {"backend": self.describe(), "precision": self.precision,
                "precision_choice": self.precision_choice}

    def close(self) -> None:
        """Release what the backend holds (sessions, engines, GPU memory)."""
        return None  # most backends free everything when garbage-collected
