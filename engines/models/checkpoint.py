"""Checkpoints: weights in safetensors, everything else in a JSON sidecar. Never unpickled.

``NAME.safetensors`` holds the model weights under ``model.``; a resumable training checkpoint
also holds the raw (non-EMA) weights under ``train.model.`` and the optimizer's tensors under
``train.optim.``. ``NAME.json`` holds the architecture, the
:class:`~detstream.engines.spec.ModelSpec`
(class names, input size, preprocessing contract), metrics, training arguments, git commit and
the small, JSON-able part of the training state.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from detstream.engines.errors import UserInputError
from detstream.engines.models.yolo import SCALES, Detector
from detstream.engines.spec import ModelSpec

FORMAT = "detstream-checkpoint"
ARCHITECTURE = "detstream-yolo"


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, sidecar)`` for a checkpoint named by either file or by its stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def git_commit() -> str | None:
    """The commit of the source tree this code runs from, if it is a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def save_checkpoint(path: str | Path, model: Detector, spec: ModelSpec,
                    info: dict[str, Any] | None = None,
                    train_tensors: dict[str, torch.Tensor] | None = None,
                    half: bool = False) -> Path:
    """Write ``path`` (.safetensors) and its JSON sidecar; returns the weights path.

    Args:
        path: file name (``.safetensors`` or the stem).
        model: the model whose weights to store (for training, the EMA model).
        spec: its ModelSpec.
        info: JSON-able extras: metrics, training arguments, training state.
        train_tensors: extra tensors for resuming (stored with a ``train.`` prefix).
        half: store the model's floating-point weights as FP16 (half the size; they are
            cast back to FP32 on loading). For release files, not for resuming.
    """
    weights_path, sidecar_path = checkpoint_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().to("cpu").contiguous().clone()
        tensors[f"model.{key}"] = value.half() if half and value.is_floating_point() else value
    for key, value in (train_tensors or {}).items():
        tensors[f"train.{key}"] = value.detach().to("cpu").contiguous().clone()
    sidecar = {
        "format": FORMAT,
        "version": 1,
        "architecture": ARCHITECTURE,
        "size": model.size,
        "reg_max": model.reg_max,
        "spec": spec.to_dict(),
        "weights_dtype": "float16" if half else "float32",
        "git_commit": git_commit(),
        **(info or {}),
    }
    # Write to temporary names, then rename: a crash never leaves half a checkpoint behind.
    tmp_weights = weights_path.with_suffix(".safetensors.tmp")
    tmp_sidecar = sidecar_path.with_suffix(".json.tmp")
    save_file(tensors, str(tmp_weights))
    tmp_sidecar.write_text(json.dumps(sidecar, indent=2, default=_jsonable) + "\n",
                           encoding="utf-8")
    tmp_weights.replace(weights_path)
    tmp_sidecar.replace(sidecar_path)
    return weights_path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar of a checkpoint, validated."""
    weights_path, sidecar_path = checkpoint_paths(path)
    if not weights_path.is_file():
        raise UserInputError(f"checkpoint {weights_path} does not exist; pass a .safetensors "
                             "file written by 'detstream train'")
    if not sidecar_path.is_file():
        raise UserInputError(f"checkpoint {weights_path} has no sidecar {sidecar_path.name}; "
                             "keep the .json file next to the .safetensors file")
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"checkpoint {weights_path}: its sidecar {sidecar_path} is corrupt "
                             f"({exc}); keep the .json file written with the checkpoint"
                             ) from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise UserInputError(f"{sidecar_path} is not a detstream checkpoint sidecar")
    if sidecar.get("architecture") != ARCHITECTURE or sidecar.get("size") not in SCALES:
        raise UserInputError(f"{sidecar_path}: unknown architecture "
                             f"{sidecar.get('architecture')!r} size {sidecar.get('size')!r}")
    return sidecar


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint's .safetensors file (clear error when corrupt)."""
    weights_path, _ = checkpoint_paths(path)
    try:
        return load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserInputError(f"checkpoint {weights_path} is corrupt or truncated ({exc}); "
                             "use an intact copy or train again") from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[Detector, ModelSpec, dict[str, Any]]:
    """Load a model for inference: ``(model in eval mode, spec, sidecar)``.

    Raises:
        UserInputError: missing, corrupt or mismatched checkpoint, in one sentence.
    """
    sidecar = read_sidecar(path)
    spec = ModelSpec.from_dict(sidecar["spec"])
    tensors = load_tensors(path)
    model = Detector(sidecar["size"], spec.num_classes, int(sidecar.get("reg_max", 16)),
                     embed_dim=spec.embed_dim)
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    load_weights(model, state, checkpoint_paths(path)[0])
    return model.to(device).eval(), spec, sidecar


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], origin: Path) -> None:
    """``load_state_dict`` with one clear error for missing, extra or mis-shaped weights."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or shapes:
        detail = "; ".join(part for part in (
            f"missing {len(missing)} (e.g. {missing[0]})" if missing else "",
            f"unexpected {len(extra)} (e.g. {extra[0]})" if extra else "",
            f"wrong shape {len(shapes)} (e.g. {shapes[0]})" if shapes else "") if part)
        raise UserInputError(f"checkpoint {origin} does not match its architecture: {detail}")
    model.load_state_dict(state)
