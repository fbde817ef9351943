"""Load what ``--model`` names as a PyTorch detector (checkpoints and ``default``)."""

from __future__ import annotations

from pathlib import Path

import torch

from detstream.engines.errors import UserInputError
from detstream.engines.models import Detector
from detstream.engines.models.checkpoint import load_checkpoint
from detstream.engines.spec import ModelSpec
from detstream.engines.zoo.resolve import DEFAULT_WEIGHTS, resolve_model

__all__ = ["DEFAULT_WEIGHTS", "load_model"]


def load_model(name: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[Detector, ModelSpec, dict]:
    """Load ``default`` or a checkpoint: ``(model in eval mode, spec, sidecar)``.

    The value is resolved by :func:`resolve_model` (one set of errors for every command);
    ONNX files and downloaded models are not PyTorch detectors and are refused here.
    """
    source = resolve_model(name)
    if source.is_onnx:
        raise UserInputError(f"--model {name} is an ONNX model; this command needs a detstream "
                             "checkpoint or 'default' (ONNX models run with --backend "
                             "onnxruntime or tensorrt)")
    return load_checkpoint(source.path, device)
