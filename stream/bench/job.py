"""What the ``detstream bench`` jobs' declarations share: the job's parser, the argument groups
several jobs take (declared once here), and what the handlers share: the printers, the model,
the JSON file.

A job is a light module beside its benchmark (``engine_job.py`` beside ``engine.py``): a
``register(jobs)`` that declares the job's arguments with :func:`declare`, and a ``run(args)``
handler that imports the benchmark only when the job runs, after ``detstream`` has set the
thread policy (``runs_pipeline``) and so that ``detstream --help`` loads no torch. Nothing here
imports torch either.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detstream.stream.commands.args import add_model_arguments, output_file, positive_int
from detstream.stream.options import (
    OptionError,
    Switch,
    add_arguments,
    values_from_arguments,
    with_values,
)
from detstream.stream.run_config import RUN_OPTIONS, RunConfig

if TYPE_CHECKING:
    from detstream.stream.bench.common import BenchModel

#: The scene jobs' detector threshold (``bench mot``, ``bench tune``): low, as trackers want.
SCENE_CONF = 0.1

#: A job's handler: parsed arguments in, exit code out.
Handler = Callable[[argparse.Namespace], int]


def declare(jobs: argparse._SubParsersAction, name: str, run: Handler, *, help: str,
            description: str, epilog: str, runs_pipeline: bool = False
            ) -> argparse.ArgumentParser:
    """Add the job ``name`` to ``detstream bench``'s subcommands ``jobs``, handled by ``run``.

    ``runs_pipeline`` jobs get the pipeline's thread policy before ``run`` imports anything.
    The epilog (examples) keeps its line breaks. Returns the job's parser for its arguments.
    """
    parser = jobs.add_parser(name, help=help, description=description, epilog=epilog,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=run, runs_pipeline=runs_pipeline)
    return parser


def int_list(text: str) -> list[int]:
    """``320,416``: a comma list of positive whole numbers."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 320,416, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def add_json_argument(parser: argparse.ArgumentParser, what: str = "figures") -> None:
    """``--json FILE``: also write the job's ``what`` there (checked before any work)."""
    parser.add_argument("--json", type=output_file, default=None,
                        help=f"also write the {what} here")


def add_run_options(parser: argparse.ArgumentParser, *, tracker: bool = False,
                    conf: bool = False) -> None:
    """Run options the jobs share with ``detstream run``, from their one declaration
    (:mod:`detstream.stream.run_config`): ``--tracker`` (``none``: no tracker) and ``--conf``,
    whose default here is the scene jobs' own (the trackers use low scores)."""
    wanted = [name for name, on in (("tracker", tracker), ("conf", conf)) if on]
    add_arguments(parser, RunConfig, only=wanted, defaults={"conf": SCENE_CONF},
                  helps={"conf": f"detector score threshold (default {SCENE_CONF}: the "
                                 "trackers use low scores)"})


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, backend and tracker options shared by the pipeline benchmarks: the run
    options declared for the ``bench`` surface."""
    add_arguments(parser, RunConfig, "bench")


#: Run options a benchmark sets itself (what it reads and writes, how long): ``--option``
#: cannot change them.
BENCH_OWNED = ("source", "live", "loop", "start_frame", "max_frames", "output", "save_json",
               "save_mot", "stats_json", "journal", "resume", "show")
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def run_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``: any run option by its name (``detect_every=2``, ``trails=0``), the value
    read and checked as its declaration says (switches take on/off, 1/0, true/false)."""
    key, sep, word = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    declared = RUN_OPTIONS.get(key)
    if declared is None:
        raise argparse.ArgumentTypeError(f"unknown run option {key!r}; options are "
                                         f"{', '.join(RUN_OPTIONS)}")
    if key in BENCH_OWNED:
        raise argparse.ArgumentTypeError(f"{key} is set by the benchmark itself")
    word = word.strip()
    kind = declared.kind
    try:
        if isinstance(kind, Switch):
            if word.lower() not in (*_ON, *_OFF, *(("none",) if kind.optional else ())):
                raise OptionError(f"expected on or off, got {word!r}")
            value = None if word.lower() == "none" else word.lower() in _ON
        elif declared.name == "classes":
            value = kind.check([part for part in word.split(",") if part.strip()])
        else:
            value = kind.parse(word)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(f"{key}: {exc}") from None
    return key, value


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    """``--option KEY=VALUE`` (repeatable): any other run option for the benchmark's runs, as
    :func:`run_config` applies it (new options of :class:`RunConfig` work at once)."""
    parser.add_argument("--option", dest="run_options", action="append", type=run_option,
                        default=[], metavar="KEY=VALUE",
                        help="any other run option for the measured runs, by its name in "
                             "the run options (detect_every=2, trails=0, ...); repeat it for "
                             "more")


def run_config(args: argparse.Namespace, **fixed: Any) -> RunConfig:
    """The :class:`RunConfig` the job's flags give: the run options declared for the ``bench``
    surface (:func:`add_pipeline_arguments`), the ``--option`` values, then ``fixed`` (what
    the benchmark sets itself).

    Raises:
        UserInputError: values that do not go together (one line naming the option).
    """
    config = RunConfig(**values_from_arguments(args, RunConfig, "bench"))
    return with_values(config, **{**dict(getattr(args, "run_options", [])), **fixed})


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    """The detector of the scene benchmarks (``mot``, ``tune``): a model or none, at its own
    input size."""
    add_model_arguments(parser, model_help="detector for the model stream, or none (default: "
                                           "default)", imgsz=False, backend="auto")


def add_scene_arguments(parser: argparse.ArgumentParser) -> None:
    """The length and frame size of the scene benchmarks' rendered scenes."""
    parser.add_argument("--frames", type=positive_int, default=300,
                        help="frames per scene (default 300)")
    parser.add_argument("--size", default="640x360", help="frame size (default 640x360)")


def log(message: str) -> None:
    """Progress, on stderr (stdout holds the figures)."""
    print(message, file=sys.stderr, flush=True)


def show(line: str) -> None:
    """A line of figures, on stdout as soon as it is measured."""
    print(line, flush=True)


def bench_model(args: argparse.Namespace) -> BenchModel:
    """The model that :func:`add_pipeline_arguments`' options name."""
    from detstream.stream.bench.common import BenchModel

    return BenchModel(args.model, args.backend, args.imgsz, args.names, args.cuda_graph,
                      args.weights)


def write_json(path: Path | None, figures: dict) -> None:
    """Write ``figures`` to ``path`` (indented, newline at the end), making its folder; nothing
    when ``path`` is None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
