"""The one place a ``--model`` value becomes a model source.

In: ``default``, a named model (``yolox-nano``...: see :mod:`detstream.engines.zoo.catalog`), a
detstream
checkpoint (``.safetensors``), an ONNX file, or a TensorRT engine from detstream's cache
(``.engine``, resolved to the ONNX file it was built from). Out: a :class:`ModelSource` with the
file to load and its :class:`ModelSpec`, downloaded first when a named model is not cached.
Every command, the demo and ``open_backend`` go through :func:`resolve_model`, so every way of
naming a model has the same errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from detstream.engines.errors import UserInputError
from detstream.engines.spec import ModelSpec
from detstream.engines.zoo.catalog import NamedModel, named_model
from detstream.engines.zoo.coco import COCO80

Log = Callable[[str], None]

#: The embedded default model, shipped inside the package.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "default.safetensors"
MODEL_SUFFIXES = (".onnx", ".safetensors", ".json", ".engine")


@dataclass(frozen=True)
class ModelSource:
    """What ``--model`` named.

    Attributes:
        name: as the user wrote it.
        path: the file to load: a checkpoint (``.safetensors``) or an ONNX file.
        spec: the model's contract.
        is_onnx: ``path`` is an ONNX file (else a detstream checkpoint).
        named: the catalog entry when a name was used.
        weights: the weights file behind ``path`` when they differ (a torchvision model's
            ``.pth``, which the torch backend loads directly).
    """

    name: str
    path: Path
    spec: ModelSpec
    is_onnx: bool
    named: NamedModel | None = None
    weights: Path | None = None

    @property
    def runs_on_torch(self) -> bool:
        """The torch backend can run it: a detstream checkpoint or a torchvision model."""
        return not self.is_onnx or self.weights is not None


def _is_name(text: str) -> bool:
    return "/" not in text and not text.endswith(MODEL_SUFFIXES) and named_model(text) is not None


def resolve_model(model: str | Path, names: str | Path | None = None,
                  weights: str | Path | None = None, log: Log | None = None) -> ModelSource:
    """Find (downloading when needed) the model's file and its contract, without loading
    weights into torch.

    Args:
        model: what ``--model`` says.
        names: a class-names file for an ONNX file (or a named model) without the right names.
        weights: a file the user already has for a named model, used instead of downloading.
        log: where notes and download messages go.
    """
    from detstream.engines.zoo.onnx_import import inspect_onnx

    text = str(model)
    if _is_name(text):
        entry = named_model(text)
        if entry.kind == "embedded":
            if weights is not None:
                raise UserInputError("--weights applies to downloadable models; pass the "
                                     "checkpoint itself as --model PATH")
            return _checkpoint(text, DEFAULT_WEIGHTS, names, embedded=True)
        if entry.kind == "torchvision":
            return _torchvision_source(text, entry, weights, log)
        path = _named_file(entry, weights, log)
        spec = inspect_onnx(path, names)
        if names is None:
            spec = replace(spec, class_names=COCO80 if entry.num_classes == 80
                           else spec.class_names)
        return ModelSource(text, path, replace(spec, name=entry.name), True, entry)
    if weights is not None:
        raise UserInputError(f"--weights applies to named models (detstream models lists "
                             f"them); {text} is a file: pass it as --model")
    if text.endswith(".engine"):
        return resolve_model(_engine_onnx(Path(text)), names, log=log)
    if text.endswith(".onnx"):
        if not Path(text).is_file():
            raise UserInputError(f"model file {text} does not exist")
        return ModelSource(text, Path(text), inspect_onnx(text, names, log), True)
    return _checkpoint(text, Path(text), names)


def _checkpoint(text: str, path: Path, names: str | Path | None,
                embedded: bool = False) -> ModelSource:
    from detstream.engines.models.checkpoint import read_sidecar

    if embedded and not path.is_file():
        raise UserInputError(f"the embedded default model is missing ({path}); reinstall "
                             "detstream or pass --model CHECKPOINT")
    if path.suffix not in (".safetensors", ".json", ""):
        raise UserInputError(f"--model {text}: expected a model name (detstream models lists "
                             "them), a .safetensors checkpoint, an .onnx file or an .engine")
    if not path.with_suffix(".safetensors").exists():
        raise UserInputError(f"model {text!r} is neither a model name (detstream models lists "
                             "them) nor an existing checkpoint, ONNX or engine file")
    path = path.with_suffix(".safetensors")
    if names is not None:
        raise UserInputError("--names applies to ONNX files; checkpoints carry their names")
    spec = ModelSpec.from_dict(read_sidecar(path)["spec"])
    return ModelSource(text, path, spec, False)


def check_named_file(entry: NamedModel, path: Path) -> None:
    """Raise :class:`UserInputError` unless ``path`` is the model ``entry`` describes: it loads
    as ONNX, its layout is recognized and is the entry's, and so are its input size and class
    count."""
    from detstream.engines.zoo.onnx_import import inspect_onnx

    spec = inspect_onnx(path)
    size = (entry.input_size, entry.input_size)
    found = (spec.layout, tuple(spec.input_size), spec.num_classes)
    if found != (entry.layout, size, entry.num_classes):
        raise UserInputError(
            f"{path.name} is a {found[0]} model with input {found[1][1]}x{found[1][0]} and "
            f"{found[2]} classes; {entry.name} is {entry.layout}, {size[1]}x{size[0]}, "
            f"{entry.num_classes} classes")


def _named_file(entry: NamedModel, weights: str | Path | None, log: Log | None) -> Path:
    """The file of a downloadable named model: the user's own (``--weights``, checked by its
    structure), or the cache's (downloaded and verified when missing)."""
    from detstream.engines.zoo.download import fetch

    check = check_torchvision_file if entry.kind == "torchvision" else check_named_file
    if weights is None:
        return fetch(entry.url, entry.file_name, sha256=entry.sha256,
                     hash_prefix=entry.hash_prefix, check=lambda part: check(entry, part),
                     log=log)
    path = Path(weights)
    if not path.is_file():
        raise UserInputError(f"--weights {path} does not exist")
    try:
        check(entry, path)
    except UserInputError as exc:
        raise UserInputError(f"--weights {path} is not {entry.name}: {exc}") from None
    return path


def _engine_onnx(engine: Path) -> str:
    """The ONNX file a cached engine was built from (its JSON beside it says)."""
    sidecar = engine.with_suffix(".json")
    if not engine.is_file():
        raise UserInputError(f"engine file {engine} does not exist")
    try:
        onnx = json.loads(sidecar.read_text(encoding="utf-8"))["onnx"]
    except (OSError, ValueError, KeyError):
        raise UserInputError(f"{engine} has no readable {sidecar.name} beside it; pass the ONNX "
                             "file or model it was built from (engines are rebuilt from the "
                             "cache when needed)") from None
    if not Path(onnx).is_file():
        raise UserInputError(f"{engine} was built from {onnx}, which no longer exists; pass "
                             "the model again")
    return onnx


def _load_state_dict(path: Path) -> dict:
    """A torchvision weights file as a state dict (never unpickled beyond tensors)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file: pickle and zip errors
        raise UserInputError(f"{path.name} is not a PyTorch weights file ({type(exc).__name__})"
                             ) from None
    if not isinstance(state, dict):
        raise UserInputError(f"{path.name} holds no state dict")
    return state


def check_torchvision_file(entry: NamedModel, path: Path) -> None:
    """Raise :class:`UserInputError` unless ``path``'s weights load into ``entry``'s model."""
    from detstream.engines.zoo.torchvision_models import build_torchvision_detector

    build_torchvision_detector(entry.torchvision, _load_state_dict(path))


def _torchvision_source(text: str, entry: NamedModel, weights: str | Path | None,
                        log: Log | None) -> ModelSource:
    """A torchvision detector: its weights (downloaded or the user's), exported once to ONNX in
    the cache (dynamic batch), so every ONNX backend runs it."""
    from detstream.engines.cache import cache_root, file_sha256
    from detstream.engines.zoo.onnx_import import inspect_onnx
    from detstream.engines.zoo.torchvision_models import export_torchvision_onnx

    path = _named_file(entry, weights, log)
    onnx = cache_root() / "onnx" / f"{entry.name}_{file_sha256(path)[:16]}.onnx"
    if not onnx.is_file():
        if log is not None:
            log(f"exporting {entry.name} to ONNX in the cache")
        export_torchvision_onnx(entry.torchvision, onnx, _load_state_dict(path), max_batch=8)
    return ModelSource(text, onnx, replace(inspect_onnx(onnx), name=entry.name), True, entry,
                       weights=path)


def load_torchvision(source: ModelSource):
    """``(module, spec)`` of a torchvision model source, for the torch backend."""
    from detstream.engines.zoo.torchvision_models import build_torchvision_detector

    module, _ = build_torchvision_detector(source.named.torchvision,
                                           _load_state_dict(source.weights))
    return module, source.spec
