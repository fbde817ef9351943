"""``detstream bench analytics``: its arguments and handler (the benchmark is
``analytics.py``)."""

from __future__ import annotations

import argparse

from detstream.stream.bench import job
from detstream.stream.commands.args import frame_size, positive_int

#: The scene kinds, light to import (the benchmark's own list is ANALYTICS_KINDS).
KINDS = ("sparse", "crowd", "crossings", "occlusions", "stop-go")


def kind_list(text: str) -> tuple[str, ...]:
    """``sparse,crowd``: scene kinds, each one of :data:`KINDS`."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown scene kind {unknown[0] if unknown else ''!r}; "
                                         f"use some of {','.join(KINDS)}")
    return kinds


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench analytics`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "analytics", run, runs_pipeline=True,
        help="counting lines and watched areas against the truth; their cost a frame",
        description="Renders a held-out static scene of each kind, places two counting lines "
                    "and a watched area on it, runs the pipeline on it and scores the counts, "
                    "events (precision and recall within 1 s on the same object) and dwell "
                    "times against those of the scene's true boxes; then times 10 lines and "
                    "10 areas fed 30 tracks.",
        epilog="examples:\n  detstream bench analytics\n"
               "  detstream bench analytics --kinds sparse,crowd --frames 600 --json a.json")
    parser.add_argument("--kinds", type=kind_list, default=KINDS,
                        help=f"scene kinds (default {','.join(KINDS)})")
    parser.add_argument("--frames", type=positive_int, default=900,
                        help="frames per scene (default 900: 30 s at 30 fps)")
    parser.add_argument("--size", type=frame_size, default=(640, 480),
                        help="frame size (default 640x480)")
    parser.add_argument("--peer", action="store_true",
                        help="also feed the same tracks to supervision's LineZone (pip install "
                             "supervision; not a dependency) and compare each line's error")
    job.add_pipeline_arguments(parser)
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Score the rules on every scene kind, time them, print and write the figures."""
    from detstream.engines.errors import UserInputError
    from detstream.stream.bench.analytics import bench_analytics, print_analytics

    if args.peer:
        try:
            import supervision  # noqa: F401
        except ImportError:
            raise UserInputError("--peer compares with supervision, which is not installed: "
                                 "pip install supervision") from None
    result = bench_analytics(job.bench_model(args).run_options() | {"tracker": args.tracker},
                             args.kinds, args.frames, args.size, log=job.log, peer=args.peer)
    print_analytics(result)
    job.write_json(args.json, result)
    return 0
