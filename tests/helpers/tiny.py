"""Small real things the pipeline tests share: an untrained checkpoint and a frame counter."""

from __future__ import annotations

from pathlib import Path

import av
import torch

from detstream.engines.models import Detector
from detstream.engines.models.checkpoint import save_checkpoint
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
