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
from typing import TYPE_CHECKING

from detstream.stream.commands.args import add_model_arguments, output_file, positive_int
from detstream.stream.options import add_arguments
from detstream.stream.run_config import RunConfig

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
