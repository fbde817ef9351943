"""Read and write the model contract stored in an ONNX file's metadata.

detstream writes its :class:`~detstream.engines.spec.ModelSpec` as JSON under the key
``detstream``, and,
for tools that know Ultralytics exports, ``names``, ``imgsz``, ``stride`` and ``batch`` as
Ultralytics writes them. Reading falls back to those Ultralytics keys for foreign files.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
from onnx.external_data_helper import load_external_data_for_model

from detstream.engines.errors import UserInputError
from detstream.engines.spec import ModelSpec

SPEC_KEY = "detstream"
#: What an INT8 file's name ends with, beside the FP32 file ``NAME.onnx`` it was made from.
INT8_SUFFIX = ".int8.onnx"


def load_onnx(path: str | Path, load_weights: bool = False) -> onnx.ModelProto:
    """Load an ONNX file (graph only by default) with one clear error when it is unreadable.

    Every ONNX file detstream opens passes through here first (inspection, onnxruntime,
    TensorRT builds, FP16 copies), so this is where untrusted files are checked: external
    data must lie in the model's own folder (:func:`check_external_data`), before anything
    reads it.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"model file {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise UserInputError(f"{path} is not a readable ONNX file ({type(exc).__name__}); "
                             "export it again") from None
    check_external_data(model, path)
    if load_weights:
        try:
            load_external_data_for_model(model, str(Path(os.path.abspath(path)).parent))
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:
            raise UserInputError(f"{path}: its external data cannot be read ({exc}); keep the "
                                 "data files beside the model") from None
    return model


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in ``graph``: initializers, sparse ones and node attributes, in
    subgraphs too."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        if attribute.HasField("sparse_tensor"):
            yield from (attribute.sparse_tensor.values, attribute.sparse_tensor.indices)
        for sparse in attribute.sparse_tensors:
            yield from (sparse.values, sparse.indices)
        if attribute.HasField("g"):
            yield from _tensors(attribute.g)
        for graph in attribute.graphs:
            yield from _tensors(graph)


def check_external_data(model: onnx.ModelProto, path: str | Path) -> None:
    """Refuse a model whose tensors keep their data outside the model's folder.

    An ONNX tensor may name a file for its bytes (``external_data`` ``location``); onnx,
    onnxruntime and TensorRT read it relative to the model's folder. A file from elsewhere
    could name ``../../etc/passwd`` or ``/home/user/.ssh/id_rsa`` and have its bytes read (and
    perhaps shown as detections or copied into an FP16 export). Locations must be relative
    and stay inside the folder once links are followed.

    Raises:
        UserInputError: naming the file, the tensor and the location.
    """
    path = Path(path)
    folder = Path(os.path.abspath(path)).parent
    real_folder = folder.resolve()
    tensors = [*_tensors(model.graph),
               *(t for function in model.functions for node in function.node
                 for t in _node_tensors(node))]
    for tensor in tensors:
        entries = {entry.key: entry.value for entry in tensor.external_data}
        if tensor.data_location != onnx.TensorProto.EXTERNAL and not entries:
            continue
        location = entries.get("location", "")
        target = (folder / location).resolve()
        if (not location or os.path.isabs(location)
                or not target.is_relative_to(real_folder) or target == real_folder):
            raise UserInputError(
                f"{path} is refused: tensor {tensor.name!r} reads its data from "
                f"{location!r}, outside the model's folder {folder}; a model may only use "
                "data files beside it (re-export it with its data inside its folder)")


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
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"--names {path} is not a text file; write one class name per "
                             "line") from None
    if path.suffix in (".yaml", ".yml", ".json"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UserInputError(f"--names {path} is not valid YAML or JSON "
                                 f"({str(exc).splitlines()[0]})") from None
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


def int8_path(fp32_path: str | Path) -> Path:
    """``NAME.int8.onnx`` beside ``NAME.onnx``: where ``detstream export --int8`` writes the
    INT8 copy and where the onnxruntime backend looks for it."""
    fp32_path = Path(fp32_path)
    return fp32_path.with_name(fp32_path.name.removesuffix(".onnx") + INT8_SUFFIX)


def checkpoint_int8_path(checkpoint: str | Path) -> Path:
    """``NAME.int8.onnx`` beside a checkpoint ``NAME.safetensors``: where the onnxruntime
    backend looks for the checkpoint's INT8 copy (the default model ships one)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + INT8_SUFFIX)


def int8_record(model: str | Path | onnx.ModelProto) -> dict | None:
    """The ``int8`` record of an INT8 file's metadata (its accuracy check, calibration and
    the SHA-256 of the FP32 file it was made from), or ``None`` for any other model (a path,
    or a model already loaded)."""
    if not isinstance(model, onnx.ModelProto):
        model = load_onnx(model)
    try:
        stored = json.loads(read_metadata(model).get(SPEC_KEY, "{}"))
    except json.JSONDecodeError:
        return None
    record = stored.get("int8") if isinstance(stored, dict) else None
    return record if isinstance(record, dict) else None
