"""Resolve what users write after ``--model`` into a loaded model and its ModelSpec."""

from __future__ import annotations

from pathlib import Path

import torch

from engines.errors import UserInputError
from engines.models import Detector
from engines.models.checkpoint import load_checkpoint
from engines.spec import ModelSpec

#: The embedded default model, shipped inside the package.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "default.safetensors"


def load_model(name: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[Detector, ModelSpec, dict]:
    """Load ``default`` or a checkpoint path: ``(model in eval mode, spec, sidecar)``."""
    if str(name) == "default":
        if not DEFAULT_WEIGHTS.is_file():
            raise UserInputError(
                f"the embedded default model is missing from this installation "
                f"({DEFAULT_WEIGHTS}); reinstall detstream or pass --model CHECKPOINT")
        return load_checkpoint(DEFAULT_WEIGHTS, device)
    path = Path(name)
    if path.suffix not in (".safetensors", ".json", ""):
        raise UserInputError(f"{path}: only detstream checkpoints (.safetensors with their "
                             ".json sidecar) and 'default' can be loaded here")
    if not path.exists():
        raise UserInputError(f"model {name!r} is neither 'default' nor an existing checkpoint "
                             "file")
    return load_checkpoint(path, device)
