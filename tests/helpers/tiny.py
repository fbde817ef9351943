"""Small real things the pipeline tests share: an untrained checkpoint and a frame counter."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import torch

from detstream.engines.models import Detector
from detstream.engines.models.checkpoint import save_checkpoint
from detstream.engines.runtime.base import Backend
from detstream.engines.spec import ModelSpec

CLASSES = ("circle", "triangle", "square", "star")


def tiny_checkpoint(path: Path, size: int) -> Path:
    """An untrained detector at ``size`` px: the pipeline's mechanics do not need a good
    model, and a small input keeps the tests quick."""
    torch.manual_seed(0)
    save_checkpoint(path, Detector("n", len(CLASSES)).eval(),
                    ModelSpec(name="tiny", class_names=CLASSES, input_size=(size, size)))
    return path


def decoded_frames(path: Path) -> int:
    """Frames a video file really decodes to (it is playable that far)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


class FailingBackend(Backend):
    """A real backend whose ``fail_on``-th call raises (an engine failing mid-run)."""

    def __init__(self, inner: Backend, fail_on: int, message: str = "engine lost") -> None:
        self.inner = inner
        self.name, self.spec, self.device = inner.name, inner.spec, inner.device
        self.dtype, self.max_batch = inner.dtype, inner.max_batch
        self.fail_on = fail_on
        self.message = message
        self.calls = 0
        self._lock = threading.Lock()

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        with self._lock:
            self.calls += 1
            if self.calls == self.fail_on:
                raise RuntimeError(self.message)
        return self.inner.infer(batch)
