"""``detstream bench soak``: its arguments and handler (the benchmark is ``soak.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from detstream.stream.bench import job
from detstream.stream.commands.args import non_negative_float, positive_float


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench soak`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "soak", run, runs_pipeline=True,
        help="hours of the full pipeline: memory slope, descriptor and thread peaks",
        description="Runs what `detstream run` runs (model, tracking, drawing, H.264 and JSON "
                    "Lines outputs, truth scores on synthetic sources) for --minutes, samples "
                    "resident memory, open file descriptors and threads every --every seconds, "
                    "and prints the memory slope after warm-up (least squares, MB per hour) "
                    "and the peaks. File sources loop, so any file lasts the whole soak.",
        epilog="examples:\n  detstream bench soak --minutes 30 --json soak-live.json\n"
               "  detstream bench soak --source bikes.mp4 --minutes 30 --json soak-file.json")
    parser.add_argument("--source", default="synthetic://?seed=0&size=640x360&fps=30&live=1"
                                            "&frames=0&objects=8",
                        help="any source (default: a paced live synthetic scene, 30 fps, "
                             "640x360); files loop")
    job.add_pipeline_arguments(parser)
    parser.add_argument("--minutes", type=positive_float, default=30.0,
                        help="duration (default 30)")
    parser.add_argument("--every", type=positive_float, default=5.0, metavar="SECONDS",
                        help="sampling interval (default 5)")
    parser.add_argument("--warmup-minutes", type=non_negative_float, default=None,
                        help="left out of the slope (default: a third of the run, at most 5)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="write the outputs here instead of a temporary folder")
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the whole pipeline for ``--minutes``; print the memory slope and the peaks."""
    from detstream.engines.paths import writable_dir
    from detstream.stream.bench.soak import bench_soak, print_soak
    from detstream.stream.options import values_from_arguments
    from detstream.stream.run_config import RunConfig

    if args.json is not None:
        writable_dir(args.json.parent)
    if args.keep is not None:
        writable_dir(args.keep)
    config = RunConfig(source=args.source, **values_from_arguments(args, RunConfig, "bench"))
    warmup = None if args.warmup_minutes is None else args.warmup_minutes * 60.0
    result = bench_soak(config, args.minutes, args.every, warmup, args.keep, job.log)
    print_soak(result)
    job.write_json(args.json, result)
    return 0
