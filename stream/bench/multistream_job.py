"""``detstream bench multistream``: its arguments and handler (the benchmark is
``multistream.py``)."""

from __future__ import annotations

import argparse

from detstream.stream.bench import job
from detstream.stream.commands.args import bounded_int, positive_int


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench multistream`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "multistream", run, help="one batched multi-stream process vs N separate processes",
        description="Runs N streams of the same source two ways on this machine: one "
                    "`detstream run` process with N --source (one model, batched inference) "
                    "and N separate single-stream processes at the same time, each with "
                    "tracking and JSON Lines output, and compares their aggregate FPS "
                    "(model loading left out of both).",
        epilog="examples:\n  detstream bench multistream --source bikes.mp4 --streams 4 "
               "--json multi.json\n"
               "  detstream bench multistream --source clip.mp4 --streams 8 --model yolox-nano")
    parser.add_argument("--source", required=True, help="a video file, folder or synthetic://")
    parser.add_argument("--streams", type=bounded_int(2, 64), default=4,
                        help="streams on each side (default 4)")
    job.add_pipeline_arguments(parser)
    parser.add_argument("--frames", type=positive_int, default=300,
                        help="frames per stream (default 300)")
    parser.add_argument("--output-video", action="store_true",
                        help="also write each stream's H.264 video")
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the streams batched in one process and as separate processes; compare."""
    from detstream.stream.bench.multistream import bench_multistream, print_multistream

    result = bench_multistream(args.source, args.streams, job.bench_model(args), args.frames,
                               args.tracker, video=args.output_video, log=job.log)
    print_multistream(result)
    job.write_json(args.json, result)
    return 0
