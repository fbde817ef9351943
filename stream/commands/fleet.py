"""``detstream fleet``: many cameras over the workers of a Ray cluster.

``fleet run`` runs the fleet and serves its endpoint; ``fleet status``, ``fleet add``,
``fleet remove`` and ``fleet add-worker`` talk to that endpoint (see
:mod:`detstream.stream.fleet.server`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detstream.stream.commands.args import (
    bounded_int,
    input_file,
    non_negative_float,
    positive_float,
    positive_int,
)
from detstream.stream.fleet import DEFAULT_URL

EXAMPLES = """examples:
  detstream fleet run --sources cameras.yaml                      # a local Ray instance
  detstream fleet run --sources cameras.yaml --address auto --stats-json fleet.json
  detstream fleet run --sources cameras.yaml --address ray://head:10001
  detstream fleet status                                          # while it runs
  detstream fleet add --name gate2 --uri rtsp://10.0.0.6/stream --fps 15
  detstream fleet remove gate2
  detstream fleet add-worker --name cpu-2 --cpus 1
"""


def register(commands: argparse._SubParsersAction) -> None:
    fleet = commands.add_parser(
        "fleet", help="run many cameras over the workers of a Ray cluster",
        description="Streams listed in a YAML file run on Ray workers (one inference service "
                    "each: its own batching, trackers and outputs), placed by their frame "
                    "rate against what each worker sustains; streams of a lost worker move "
                    "to the others. Needs detstream[fleet].",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = fleet.add_subparsers(dest="fleet_command", metavar="VERB", required=True)
    run = verbs.add_parser(
        "run", help="run every stream of a cameras YAML to its end (Ctrl-C stops)",
        description="Start or join Ray, start the workers, place the streams, watch over "
                    "them (moving the streams of a lost worker, retrying sources that fail "
                    "to open), serve the fleet's state over HTTP, and print each stream's "
                    "statistics (those of 'detstream run').",
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
    run.add_argument("--retries", type=bounded_int(-1, 1_000_000), default=5, metavar="N",
                     help="tries again to open a source that fails, waiting 1, 2, 4... s "
                          "(up to 60) in between; -1: without end (default 5)")
    run.add_argument("--status-port", type=bounded_int(0, 65535), default=8780, metavar="PORT",
                     help="serve the fleet's state and changes on this port (default 8780; "
                          "taken: any free one; 0: any free one)")
    run.add_argument("--status-host", default="127.0.0.1", metavar="HOST",
                     help="address the endpoint binds (default loopback: it can change the "
                          "fleet and has no authentication)")
    run.add_argument("--stats-json", type=Path, default=None, metavar="FILE",
                     help="every stream's and worker's statistics, and the events, as JSON")
    run.set_defaults(handler=run_fleet, runs_pipeline=True)

    status = verbs.add_parser("status", help="show a running fleet's streams and workers",
                              description="Ask a running 'detstream fleet run' for its state.")
    _url_argument(status)
    status.add_argument("--json", action="store_true", help="print the whole state as JSON")
    status.set_defaults(handler=show_status)

    add = verbs.add_parser("add", help="add a stream to a running fleet",
                           description="Add a stream while the others run; it takes the "
                                       "fleet's defaults (outputs with {name} included).")
    _url_argument(add)
    add.add_argument("--name", required=True, help="the stream's name (part of file names)")
    add.add_argument("--uri", required=True, help="its source, as for 'detstream run'")
    add.add_argument("--fps", type=positive_float, default=None,
                     help="frames/s it needs (default: the URI's, else 30)")
    add.add_argument("--priority", type=int, default=None, help="larger is placed first")
    add.add_argument("--model", default=None, help="its model (default: the fleet's)")
    add.set_defaults(handler=add_stream)

    remove = verbs.add_parser("remove", help="stop a stream of a running fleet",
                              description="Stop one stream and finalise its outputs; the "
                                          "others run on.")
    remove.add_argument("name", help="the stream's name")
    _url_argument(remove)
    remove.set_defaults(handler=remove_stream)

    worker = verbs.add_parser("add-worker", help="add a worker to a running fleet",
                              description="Start one more worker (a Ray actor); streams "
                                          "waiting for room go there.")
    _url_argument(worker)
    worker.add_argument("--name", required=True, help="the worker's name")
    worker.add_argument("--cpus", type=positive_float, default=1.0, help="CPUs (default 1)")
    worker.add_argument("--gpus", type=non_negative_float, default=0.0, help="GPUs (default 0)")
    worker.add_argument("--capacity-fps", type=positive_float, default=None,
                        help="frames/s it sustains (default: measured)")
    worker.set_defaults(handler=add_worker)


def _url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the running fleet's endpoint (default {DEFAULT_URL})")


# ---------------------------------------------------------------------------- fleet run

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
    from detstream.stream.fleet.server import serve
    from detstream.stream.signals import graceful_stop

    import_ray()  # one line on how to install it, before anything else happens
    config = load_fleet(args.sources)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    fleet = Fleet(config, address=args.address, cpus=args.cpus, log=log,
                  collect_ms=args.collect_ms, retries=args.retries)
    print(f"{len(config.streams)} streams from {config.path} → Ray ({args.address})",
          file=sys.stderr)
    servers = []

    def started(running: Fleet) -> None:
        server = serve(running, args.status_host, args.status_port)
        servers.append(server)
        log(f"fleet status: {server.url}/status (detstream fleet status --url {server.url})")

    try:
        with graceful_stop() as stop:
            report = fleet.run(stop, on_start=started)
    finally:
        for server in servers:
            server.close()
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
    for name, reason in report["shortage"].items():
        print(f"{args.prog}: error: stream {name} did not run: {reason}", file=sys.stderr)
    if failed or report["shortage"]:
        return 1
    return _exit_code(args.prog, report["interrupted"], report["frames_out"], "any stream")


# ---------------------------------------------------------------------------- the endpoint

def status_lines(state: dict) -> list[str]:
    """The fleet's state as tables for people (streams, workers, the last events)."""
    from detstream.stream.fleet.client import (
        STREAM_COLUMNS,
        WORKER_COLUMNS,
        stream_rows,
        worker_rows,
    )

    lines = [_table(STREAM_COLUMNS, stream_rows(state)), "", _table(WORKER_COLUMNS,
                                                                     worker_rows(state))]
    for event in state.get("events", [])[-8:]:
        lines.append(f"{event['time']:>8.1f} s  {event['message']}")
    return lines


def _table(columns: list[str], rows: list[list]) -> str:
    cells = [[str("-" if v is None else v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in [columns, *cells])


def show_status(args: argparse.Namespace) -> int:
    from detstream.stream.fleet.client import ask

    state = ask(args.url)
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        print("\n".join(status_lines(state)))
    return 0


def add_stream(args: argparse.Namespace) -> int:
    body: dict = {"name": args.name, "uri": args.uri}
    for key in ("fps", "priority", "model"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    from detstream.stream.fleet.client import ask

    answer = ask(args.url, "/streams", "POST", body)
    print(f"stream {answer['name']} added (number {answer['stream']})")
    return 0


def remove_stream(args: argparse.Namespace) -> int:
    from detstream.stream.fleet.client import ask

    answer = ask(args.url, f"/streams/{args.name}", "DELETE")
    print(f"stream {answer['name']} removed after {answer['frames_out']} frames")
    return 0


def add_worker(args: argparse.Namespace) -> int:
    body: dict = {"name": args.name, "cpus": args.cpus, "gpus": args.gpus}
    if args.capacity_fps is not None:
        body["capacity_fps"] = args.capacity_fps
    from detstream.stream.fleet.client import ask

    answer = ask(args.url, "/workers", "POST", body)
    print(f"worker {answer['name']} added")
    return 0
