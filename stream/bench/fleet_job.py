"""``detstream bench fleet``: its arguments and handler (the benchmark is ``fleet.py``)."""

from __future__ import annotations

import argparse

from detstream.engines.errors import UserInputError
from detstream.stream.bench import job
from detstream.stream.commands.args import bounded_int, positive_int


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench fleet`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "fleet", run,
        help="the fleet on Ray vs one plain multi-stream process; recovery time",
        description="Runs N streams as one plain multi-stream `detstream run` process and as "
                    "`detstream fleet run` on a local Ray instance whose workers hold the same "
                    "cores, and compares their aggregate FPS (Ray, workers and models starting "
                    "left out). --kill also kills a worker of a two-worker fleet mid-run and "
                    "times the recovery: to the loss being noticed and to the moved stream's "
                    "first new frame; then checks every frame was written exactly once.",
        epilog="examples:\n  detstream bench fleet --streams 4 --json fleet.json\n"
               "  detstream bench fleet --streams 4 --workers 2 --kill")
    parser.add_argument("--source", default="synthetic://?seed=3&size=640x360&objects=6",
                        help="a synthetic:// scene (its length is set from --frames)")
    parser.add_argument("--streams", type=bounded_int(1, 64), default=4,
                        help="streams on each side (default 4)")
    job.add_pipeline_arguments(parser)
    parser.add_argument("--frames", type=positive_int, default=300,
                        help="frames per stream (default 300)")
    parser.add_argument("--workers", type=bounded_int(1, 64), default=1,
                        help="Ray workers sharing this machine's CPUs (default 1)")
    parser.add_argument("--kill", action="store_true",
                        help="also time the recovery from a killed worker")
    parser.add_argument("--kill-after", type=positive_int, default=30, metavar="FRAMES",
                        help="frames the killed worker's stream writes first (default 30)")
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the streams in one plain process and on the fleet (and kill a worker if asked)."""
    from detstream.stream.bench.fleet import bench_fleet, print_fleet
    from detstream.stream.fleet.controller import import_ray

    import_ray()
    if not args.source.startswith("synthetic://"):
        raise UserInputError(f"--source {args.source}: bench fleet runs synthetic:// scenes "
                             "(their length is set from --frames)")
    result = bench_fleet(args.source, args.streams, job.bench_model(args), args.frames,
                         args.tracker, args.workers, args.kill, args.kill_after,
                         log=job.log)
    print_fleet(result)
    job.write_json(args.json, result)
    return 0
