"""Read and write the model contract stored in an ONNX file's metadata.

detstream writes its :class:`~engines.spec.ModelSpec` as JSON under the key ``detstream``, and,
for tools that know Ultralytics exports, ``names``, ``imgsz``, ``stride`` and ``batch`` as
Ultralytics writes them. Reading falls back to those Ultralytics keys for foreign files.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import onnx

from engines.errors import UserInputError
from engines.spec import ModelSpec

SPEC_KEY = "detstream"


def load_onnx(path: str | Path, load_weights: bool = False) -> onnx.ModelProto:
    """Load an ONNX file (graph only by default) with one clear error when it is unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"model file {path} does not exist")
    try:
        return onnx.load(str(path), load_external_data=load_weights)
    except Exception as exc:  # protobuf DecodeError and friends
        raise UserInputError(f"{path} is not a readable ONNX file ({type(exc).__name__}); "
                             "export it again") from None


def write_metadata(model: onnx.ModelProto, spec: ModelSpec, extra: dict[str, Any]) -> None:
    """Store ``spec`` (and ``extra`` JSON-able facts) in ``model``'s metadata, in place."""
    values = {
        SPEC_KEY: json.dumps({**spec.to_dict(), **extra}),
        "names": str(dict(enumerate(spec.class_names))),
        "imgsz": str(list(spec.input_size)),
        "stride": str(spec.stride),
        "batch": str(extra.get("max_batch", 1)),
        "author": "detstream",
    }
    del model.metadata_props[:]
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(model: onnx.ModelProto) -> dict[str, str]:
    """The metadata of an ONNX model as a plain dict."""
    return {entry.key: entry.value for entry in model.metadata_props}


def spec_from_metadata(metadata: dict[str, str]) -> ModelSpec | None:
    """The detstream spec stored in the metadata, or ``None`` when there is none."""
    if SPEC_KEY not in metadata:
        return None
    data = json.loads(metadata[SPEC_KEY])
    return ModelSpec.from_dict(data)


def names_from_metadata(metadata: dict[str, str]) -> tuple[str, ...] | None:
    """Class names from Ultralytics-style ``names`` metadata (``{0: 'person', ...}``)."""
    text = metadata.get("names")
    if not text:
        return None
    try:
        names = ast.literal_eval(text)  # a literal only: never evaluates code
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict):
        return tuple(str(names[k]) for k in sorted(names))
    if isinstance(names, list | tuple):
        return tuple(str(n) for n in names)
    return None


def read_names_file(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file (one per line) or a YAML/JSON list or mapping."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"--names {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml", ".json"):
        import yaml

        data = yaml.safe_load(text)
        if isinstance(data, dict) and "names" in data:
            data = data["names"]
        if isinstance(data, dict):
            return tuple(str(data[k]) for k in sorted(data))
        if isinstance(data, list):
            return tuple(str(n) for n in data)
        raise UserInputError(f"--names {path}: expected a list of names or a names: mapping")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise UserInputError(f"--names {path} holds no class names")
    return names


def onnx_precision(path: str | Path) -> str:
    """``fp16`` when the file's image input is float16, else ``fp32``."""
    model = load_onnx(path)
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in initializers:
            fp16 = value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
            return "fp16" if fp16 else "fp32"
    return "fp32"
