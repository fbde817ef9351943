"""What a visitor may name: models and stream sources are checked against the server's
allowed folders before anything is opened (no ``..``, no symbolic link leading outside)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from detstream.engines.errors import UserInputError
from detstream.engines.zoo.catalog import CATALOG, named_model
from detstream.stream.sources import NETWORK_SCHEMES

#: Model names the page accepts without a file: the same names as ``--model`` (the first use of
#: a downloadable one fetches it into the server's cache, through its mirror when one is set).
NAMED_MODELS = tuple(CATALOG)


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def inside(path: str | Path, folders: Sequence[Path]) -> Path | None:
    """``path`` resolved (symbolic links followed) when it lies inside one of ``folders``."""
    real = _real(path)
    for folder in folders:
        root = _real(folder)
        if real == root or root in real.parents:
            return real
    return None


def allowed_file(what: str, text: str, folders: Sequence[Path]) -> str:
    """The real path of ``text`` when it is a file inside ``folders``.

    Raises:
        UserInputError: outside every folder (after following links), or not a file.
    """
    real = inside(text, folders)
    if real is None and not folders:
        raise UserInputError(f"{what} {text!r} is refused: this server allows no folders "
                             "(start it with --allow-dir DIR)")
    if real is None:
        raise UserInputError(f"{what} {text!r} is refused: it is outside the allowed folders "
                             f"({', '.join(str(f) for f in folders)})")
    if not real.is_file():
        raise UserInputError(f"{what} {text!r} is not a file")
    return str(real)


def check_model(text: str, folders: Sequence[Path]) -> str:
    """A model the page may open: a named model, or an ``.onnx`` file in an allowed folder.

    Raises:
        UserInputError: anything else, with what is allowed.
    """
    text = (text or "").strip()
    if "/" not in text and named_model(text) is not None:
        return named_model(text).name
    if not text.lower().endswith(".onnx"):
        raise UserInputError(f"model {text!r} is refused: choose "
                             f"{', '.join(NAMED_MODELS)} or an .onnx file in an allowed folder")
    return allowed_file("model", text, folders)


def check_stream(text: str, folders: Sequence[Path]) -> str:
    """A server-side source the page may open: a network stream, a synthetic scene, or a
    video file in an allowed folder.

    Raises:
        UserInputError: a local path outside the allowed folders, a camera, or nothing.
    """
    text = (text or "").strip()
    if not text:
        raise UserInputError("enter a stream URL (rtsp://..., http://...) or a file path")
    scheme = urlparse(text).scheme.lower()
    if scheme in NETWORK_SCHEMES or scheme == "synthetic":
        return text
    if "://" in text or scheme == "file":
        raise UserInputError(f"source {text!r} is refused: use rtsp://, http(s)://, "
                             "synthetic:// or a file in an allowed folder")
    if text.isdigit() or text.startswith("/dev/"):
        raise UserInputError("the server's own cameras are not offered; use the Webcam tab")
    return allowed_file("source", text, folders)


#: Class-name files looked for beside an ONNX file that carries no names of its own.
NAMES_FILES = ("{stem}.names", "{stem}.txt", "classes.txt", "names.txt", "coco_classes.txt")


def names_beside(model: str) -> str | None:
    """A class-names file next to an ONNX model whose metadata has no class names."""
    if not model.lower().endswith(".onnx"):
        return None
    from detstream.engines.zoo.onnx_import import inspect_onnx

    try:
        names = inspect_onnx(model, coco_fallback=False).class_names
    except UserInputError:
        return None
    if not all(name == f"class{i}" for i, name in enumerate(names)):
        return None  # the file names its classes
    path = Path(model)
    for pattern in NAMES_FILES:
        candidate = path.parent / pattern.format(stem=path.stem)
        if candidate.is_file():
            return str(candidate)
    return None


def onnx_models(folders: Sequence[Path], limit: int = 50) -> list[str]:
    """ONNX files found in the allowed folders (for the model menu)."""
    found: list[str] = []
    for folder in folders:
        root = _real(folder)
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.onnx")):
            if inside(path, folders) is not None:
                found.append(str(path))
            if len(found) >= limit:
                return found
    return found
