"""``detstream bench live``: its arguments and handler (the benchmark is ``live.py``)."""

from __future__ import annotations

import argparse

from detstream.stream.bench import job
from detstream.stream.commands.args import positive_float


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench live`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "live", run, runs_pipeline=True,
        help="a paced live source for a while: latency against processing time, drift",
        description="Runs a live source (default: a synthetic scene paced at 30 fps at 1280x720) "
                    "with tracking, drawing and H.264 output for --seconds and reports latency "
                    "p50/p95 against the mean per-frame processing time, and the drift between "
                    "the p95 of the first and last 30 s.",
        epilog="examples:\n  detstream bench live --seconds 120 --json live.json\n"
               "  detstream bench live --seconds 120 --imgsz 640   "
               "# a model slower than the 30 fps camera: frames are dropped")
    parser.add_argument("--source",
                        default="synthetic://?seed=0&size=1280x720&fps=30&live=1&camera_motion=1"
                                "&min_size=48&max_size_frac=0.35",
                        help="a live source (default: paced synthetic scene, 30 fps, 1280x720)")
    job.add_pipeline_arguments(parser)
    parser.add_argument("--seconds", type=positive_float, default=120.0,
                        help="duration (default 120)")
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the live source for ``--seconds``; print latency against processing time."""
    from detstream.stream.bench.live import bench_live, print_live

    result = bench_live(args.source, job.bench_model(args), args.seconds,
                        args.tracker, log=job.log)
    print_live(result)
    job.write_json(args.json, result)
    return 0
