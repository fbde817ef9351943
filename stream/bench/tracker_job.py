"""``detstream bench tracker``: its arguments and handler (the benchmark is ``tracker.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from detstream.stream.bench import job
from detstream.stream.commands.args import positive_float, positive_int


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench tracker`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "tracker", run,
        help="tracker frames/s on MOT detections; camera-motion estimate frames/s",
        description="Times the tracker alone on a MOTChallenge detections file (no images, so "
                    "no camera-motion or cut detection), repeated to a few seconds, and the "
                    "camera-motion estimate on rendered frames of a panning synthetic scene.",
        epilog="examples:\n  detstream bench tracker --dets TUD-Campus/det.txt --fps 25")
    parser.add_argument("--dets", type=Path, required=True, help="MOTChallenge detections")
    parser.add_argument("--fps", type=positive_float, default=30.0, help="sequence frame rate")
    parser.add_argument("--trackers", default="bytetrack,botsort", help="comma list")
    parser.add_argument("--size", default="1280x720", help="frame size for camera motion")
    parser.add_argument("--seconds", type=positive_float, default=3.0,
                        help="time per measurement")
    parser.add_argument("--embed-dims", type=embed_dims, default=(), metavar="D[,D...]",
                        help="also time each tracker with random unit embeddings of these "
                             "widths on every detection (appearance fusion), e.g. 32,64")
    job.add_json_argument(parser)


def embed_dims(text: str) -> tuple[int, ...]:
    """``--embed-dims 32,64``: embedding widths, each a positive whole number."""
    return tuple(positive_int(part.strip()) for part in text.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    """Time each tracker and the camera-motion estimate; the rows print as they come."""
    from detstream.stream.bench.tracker import bench_tracker

    trackers = [n.strip() for n in args.trackers.split(",") if n.strip()]
    result = bench_tracker(args.dets, args.fps, trackers, args.size, args.seconds, show=job.show,
                           embed_dims=args.embed_dims)
    job.write_json(args.json, result)
    return 0
