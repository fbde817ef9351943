"""``detstream bench alerts``: its arguments and handler (the benchmark is ``alerts.py``)."""

from __future__ import annotations

import argparse

from detstream.stream.bench import job
from detstream.stream.commands.args import frame_size, positive_float

#: The fault cases, light to import (the baseline always runs first; ``alerts.CASES``).
FAULT_CASES = ("webhook", "mqtt")


def case_list(text: str) -> tuple[str, ...]:
    """``webhook,mqtt``: fault cases, each one of :data:`FAULT_CASES`, each once."""
    cases = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    if not cases or not set(cases) <= set(FAULT_CASES):
        raise argparse.ArgumentTypeError(f"expected some of {','.join(FAULT_CASES)}, "
                                         f"got {text!r}")
    return cases


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench alerts`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "alerts", run, runs_pipeline=True,
        help="alerts under faults: a webhook server down for a while, an MQTT broker "
             "restart; events lost, order, FPS against no alerts",
        description="Plays a synthetic scene full of crossings as a paced 30 fps camera with "
                    "six counting lines and two watched areas (tens of events a second, "
                    "cooldown 0), first with no alert output (the baseline), then for each "
                    "case with every event sent to a webhook server on 127.0.0.1 that closes "
                    "its socket at --down-at for --outage seconds, or to a mosquitto broker "
                    "on 127.0.0.1 that is killed at --down-at and restarted --outage seconds "
                    "later (a QoS 1 subscriber with a persistent session receives). Compares "
                    "what arrived with what the pipeline produced (lost, duplicated, in "
                    "order), the time to catch up after the return, and the pipeline's FPS "
                    "with the baseline's. Targets (issue 37): nothing lost, in order, output "
                    "FPS over the run and during the outage within 0.5 of the baseline's.",
        epilog="examples:\n  detstream bench alerts --json alerts.json\n"
               "  detstream bench alerts --cases webhook --outage 10 --seconds 40")
    parser.add_argument("--cases", type=case_list, default=FAULT_CASES,
                        help=f"fault cases after the baseline (default {','.join(FAULT_CASES)})")
    parser.add_argument("--seconds", type=positive_float, default=75.0,
                        help="each case's run (default 75)")
    parser.add_argument("--down-at", type=positive_float, default=15.0,
                        help="seconds into the run when the target goes down (default 15)")
    parser.add_argument("--outage", type=positive_float, default=30.0,
                        help="seconds the target stays down (default 30)")
    parser.add_argument("--size", type=frame_size, default=(640, 480),
                        help="frame size (default 640x480)")
    parser.add_argument("--seed", type=int, default=3737, help="the scene's seed (default 3737)")
    job.add_pipeline_arguments(parser)
    job.add_option_argument(parser)
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the baseline and every fault case; print the figures and the targets."""
    from detstream.engines.errors import UserInputError
    from detstream.stream.bench.alerts import bench_alerts, print_alerts

    if args.down_at + args.outage >= args.seconds:
        raise UserInputError(f"--down-at {args.down_at:g} + --outage {args.outage:g} leaves "
                             f"no time after the return in --seconds {args.seconds:g}")
    result = bench_alerts(job.run_config(args), args.cases, args.seconds, args.down_at,
                          args.outage, args.size, args.seed, log=job.log)
    print_alerts(result)
    job.write_json(args.json, result)
    return 0
