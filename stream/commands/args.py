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
from detstream.stream.options import add_arguments
from detstream.stream.run_config import BACKENDS, RUN_OPTIONS, RunConfig

_UNSET = object()


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


def add_model_arguments(parser: argparse.ArgumentParser, *, model_help: str | None = None,
                        names: bool = True, imgsz: bool = True, imgsz_help: str | None = None,
                        backend: str | None | object = _UNSET,
                        backends: tuple[str, ...] = BACKENDS,
                        backend_help: str | None = None,
                        device: str | None | object = _UNSET, device_help: str | None = None,
                        threads: bool = False, cuda_graph: bool = False,
                        weights: bool = True) -> None:
    """The model options, from the run options' one declaration
    (:mod:`detstream.stream.run_config`), for the commands that run a model without a run
    (``export``, ``build``, ``val``, ``bench engine``): a command changes a default or a help
    line, or narrows ``--backend`` to ``backends``, here.

    ``--model`` always; ``--weights``, ``--names`` and ``--imgsz`` unless turned off;
    ``--backend`` and ``--device`` when a default is given (``None`` is a valid default);
    ``--threads`` and ``--cuda-graph`` on request.
    """
    wanted = ["model", *(["weights"] if weights else []), *(["names"] if names else []),
              *(["imgsz"] if imgsz else []), *(["threads"] if threads else []),
              *(["cuda_graph"] if cuda_graph else [])]
    defaults: dict[str, object] = {}
    helps = {name: text for name, text in (("model", model_help), ("imgsz", imgsz_help),
                                           ("backend", backend_help),
                                           ("device", device_help)) if text is not None}
    if backend is not _UNSET and backends == BACKENDS:
        wanted.append("backend")
        defaults["backend"] = backend
    elif backend is not _UNSET:  # a narrower set than a run's (no auto): its own flag
        parser.add_argument("--backend", default=backend, choices=backends,
                            help=backend_help or RUN_OPTIONS["backend"].help)
    if device is not _UNSET:
        wanted.append("device")
        defaults["device"] = device
    add_arguments(parser, RunConfig, only=wanted, defaults=defaults, helps=helps)


def add_tracker_arguments(parser: argparse.ArgumentParser, *, default: str | None,
                          when: str = "") -> None:
    """``--tracker`` (one of the tracker registry's) and ``--config`` (a YAML of its
    parameters) for the jobs that track detections without a run (``detstream track``,
    ``bench mot --public``); ``when`` says when they apply (``"with --public: "``)."""
    from detstream.stream.track import TRACKERS

    shown = default or RUN_OPTIONS["tracker"].default
    parser.add_argument("--tracker", default=default, choices=sorted(TRACKERS),
                        help=f"{when}the tracker (default: {shown})")
    parser.add_argument("--config", type=Path, default=None, metavar="YAML",
                        help=f"{when}YAML of tracker parameters to override")
