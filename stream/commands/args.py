"""Argument types that turn bad values into one clear line (argparse exits with code 2)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from detstream.engines.data.synthetic import parse_size
from detstream.engines.data.synthetic.config import check_frame_size
from detstream.engines.errors import UserInputError
from detstream.engines.paths import check_writable_parent, existing_file


def _whole_number(text: str, minimum: int, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "a positive whole number")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "zero or more")


def bounded_int(minimum: int, maximum: int, unit: str = "") -> Callable[[str], int]:
    """An argument type for whole numbers from ``minimum`` to ``maximum``: a huge value is as
    much a mistake as a negative one (it would run for years or allocate terabytes)."""
    rule = {0: "zero or more", 1: "a positive whole number"}.get(minimum, f"at least {minimum}")

    def parse(text: str) -> int:
        value = _whole_number(text, minimum, rule)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}{unit}, got {value}")
        return value

    return parse


def worker_count(text: str) -> int:
    """Processes to start: 0 or more, at most four per core (more only slow the work)."""
    most = 4 * (os.cpu_count() or 1)
    value = _whole_number(text, 0, "zero or more")
    if value > most:
        raise argparse.ArgumentTypeError(
            f"must be at most {most} (4 per core on this machine), got {value}")
    return value


def loop_count(text: str) -> int:
    """``--loop``: extra passes, 0 or more, or -1 for endless."""
    return _whole_number(text, -1, "0 or more, or -1 (forever)")


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def input_file(text: str) -> Path:
    """A file to read: it exists, is a file and is readable."""
    try:
        return existing_file(text)
    except UserInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def output_file(text: str) -> Path:
    """A file to write, checked before any work starts: its folder can be created and written
    (nothing is created here)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; name a file to write")
    try:
        check_writable_parent(path)
    except UserInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def frame_size(text: str) -> tuple[int, int]:
    try:
        width, height = parse_size(text)
        check_frame_size(width, height)
        return width, height
    except UserInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


CUDA_GRAPH_HELP = ("replay the model from CUDA graphs captured when it opens (torch and "
                   "tensorrt on CUDA; 4-5x faster inference at batch 1 on an H200)")


MODEL_HELP = ("a model name (default, yolox-nano, ...: detstream models lists them), a "
              "checkpoint .safetensors, an .onnx file or a cached .engine (default: default)")

#: The backends a command that runs a model can ask for.
BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime")

_UNSET = object()


def add_model_arguments(parser: argparse.ArgumentParser, *, model_help: str = MODEL_HELP,
                        names: bool = True, imgsz: bool = True,
                        imgsz_help: str = "square input size for checkpoints (default: the "
                                          "model's own)",
                        backend: str | None | object = _UNSET,
                        backends: tuple[str, ...] = BACKENDS,
                        backend_help: str = "where the model runs (default auto: tensorrt, "
                                            "then torch on CUDA, then onnxruntime on the CPU)",
                        device: str | None | object = _UNSET,
                        device_help: str = "cpu or cuda[:N] (default: the best here)",
                        threads: bool = False, cuda_graph: bool = False,
                        weights: bool = True) -> None:
    """The model options, declared once with the same names, types and checks everywhere.

    ``--model`` always; ``--weights``, ``--names`` (an existing file) and ``--imgsz`` (a
    positive whole number) unless turned off; ``--backend`` and ``--device`` when a default is
    given (``None`` is a valid default); ``--threads`` and ``--cuda-graph`` on request.
    """
    parser.add_argument("--model", default="default", help=model_help)
    if weights:
        parser.add_argument("--weights", type=Path, default=None, metavar="PATH",
                            help="a file you already have for a named model (no download)")
    if names:
        parser.add_argument("--names", type=input_file, default=None, metavar="FILE",
                            help="class names for an ONNX file without them (one per line, or "
                                 "a YAML/JSON list)")
    if imgsz:
        parser.add_argument("--imgsz", type=bounded_int(1, 8192), default=None,
                            help=imgsz_help)
    if backend is not _UNSET:
        parser.add_argument("--backend", default=backend, choices=backends, help=backend_help)
    if device is not _UNSET:
        parser.add_argument("--device", default=device, help=device_help)
    if threads:
        parser.add_argument("--threads", type=positive_int, default=None,
                            help="inference threads on the CPU (default: chosen for the machine "
                                 "and the source)")
    if cuda_graph:
        parser.add_argument("--cuda-graph", action="store_true", help=CUDA_GRAPH_HELP)
