"""``detstream bench journal``: its arguments and handler (the benchmark is ``journal.py``)."""

from __future__ import annotations

import argparse

from detstream.stream.bench import job
from detstream.stream.commands.args import non_negative_int, positive_int


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench journal`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "journal", run, help="what the progress journal of resumable runs costs per frame",
        description="Writes the same packets through the JSON Lines and MOT sinks into a "
                    "temporary folder, without and then with the progress journal that lets "
                    "detstream run --resume, alternated --rounds times, and prints the medians "
                    "in µs per frame: the sinks alone, with the journal, and the difference "
                    "(flushing both files, measuring them and one pwrite a frame).",
        epilog="examples:\n  detstream bench journal\n"
               "  detstream bench journal --frames 5000 --boxes 50 --json journal.json")
    parser.add_argument("--frames", type=positive_int, default=20000,
                        help="packets each run writes (default 20000)")
    parser.add_argument("--boxes", type=non_negative_int, default=10,
                        help="tracked boxes in every packet (default 10)")
    parser.add_argument("--rounds", type=positive_int, default=3,
                        help="runs without and with the journal, alternated; the medians are "
                             "reported (default 3)")
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Time the file sinks without and with the journal; print the line of figures."""
    from detstream.stream.bench.journal import journal_cost, print_journal

    cost = journal_cost(args.frames, args.boxes, args.rounds)
    print_journal(cost)
    job.write_json(args.json, cost)
    return 0
