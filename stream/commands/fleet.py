"""``detstream fleet run``: many cameras over the workers of a Ray cluster."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detstream.stream.commands.args import input_file, non_negative_float, positive_int

EXAMPLES = """examples:
  detstream fleet run --sources cameras.yaml                      # a local Ray instance
  detstream fleet run --sources cameras.yaml --address auto --stats-json fleet.json
  detstream fleet run --sources cameras.yaml --address ray://head:10001
"""


def register(commands: argparse._SubParsersAction) -> None:
    fleet = commands.add_parser(
        "fleet", help="run many cameras over the workers of a Ray cluster",
        description="Streams listed in a YAML file run on Ray workers (one inference service "
                    "each: its own batching, trackers and outputs), placed by their frame "
                    "rate against what each worker sustains. Needs detstream[fleet].",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = fleet.add_subparsers(dest="fleet_command", metavar="VERB", required=True)
    run = verbs.add_parser(
        "run", help="run every stream of a cameras YAML to its end (Ctrl-C stops)",
        description="Start or join Ray, start the workers, place the streams, run them, and "
                    "print each stream's statistics (those of 'detstream run').",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--sources", type=input_file, required=True, metavar="YAML",
                     help="the cameras: streams (name, uri, model, tracker, outputs, fps, "
                          "priority, zone, labels), optional defaults and workers")
    run.add_argument("--address", default="local", metavar="local|auto|ray://HOST:PORT",
                     help="local: a private Ray instance on this machine (default); auto: "
                          "the cluster this machine belongs to; ray://HOST:PORT: a remote one")
    run.add_argument("--cpus", type=positive_int, default=None, metavar="N",
                     help="--address local: CPUs the instance offers (default: all)")
    run.add_argument("--collect-ms", type=non_negative_float, default=10.0, metavar="MS",
                     help="each worker's longest wait for a batch to fill (default 10)")
    run.add_argument("--stats-json", type=Path, default=None, metavar="FILE",
                     help="every stream's and worker's statistics as JSON")
    run.set_defaults(handler=run_fleet, runs_pipeline=True)


def _worker_line(worker: dict) -> str:
    capacity = ", ".join(f"{v:.1f}" for v in worker["capacity_fps"].values()) or "-"
    line = (f"worker {worker['name']}: {len(worker['streams'])} streams, "
            f"{worker['load_fps']:g} of {capacity} frames/s placed, "
            f"{worker['frames_out']} frames out")
    return line + (f"; {worker['error']}" if worker["error"] else "")


def run_fleet(args: argparse.Namespace) -> int:
    from detstream.stream.commands.run import _exit_code, _stream_line
    from detstream.stream.fleet.config import load_fleet
    from detstream.stream.fleet.controller import Fleet, import_ray
    from detstream.stream.signals import graceful_stop

    import_ray()  # one line on how to install it, before anything else happens
    config = load_fleet(args.sources)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    fleet = Fleet(config, address=args.address, cpus=args.cpus, log=log,
                  collect_ms=args.collect_ms)
    print(f"{len(config.streams)} streams from {config.path} → Ray ({args.address})",
          file=sys.stderr)
    with graceful_stop() as stop:
        report = fleet.run(stop)
    if args.stats_json is not None:
        args.stats_json.parent.mkdir(parents=True, exist_ok=True)
        args.stats_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for worker in report["workers"]:
        print(_worker_line(worker))
    for stream in report["streams"]:
        if stream["latency_ms"] is not None:
            print(f"{stream['name']} on {stream['worker']}: " + _stream_line(stream))
    print(f"{len(report['streams'])} streams on {len(report['workers'])} workers: "
          f"{report['frames_out']} frames out, {report['fps']:.1f} FPS in all")
    failed = [s for s in report["streams"] if s["error"]]
    for stream in failed:
        print(f"{args.prog}: error: stream {stream['name']} ({stream['uri']}): "
              f"{stream['error']}", file=sys.stderr)
    if failed:
        return 1
    return _exit_code(args.prog, report["interrupted"], report["frames_out"], "any stream")
