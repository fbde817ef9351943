"""``detstream bench``: the jobs, each declared beside its benchmark in
``detstream.stream.bench`` (``engine_job.py`` beside ``engine.py``); other packages add theirs
through the ``detstream.bench`` entry points (``bench demo``)."""

from __future__ import annotations

import argparse

from detstream.stream.bench import (
    alerts_job,
    analytics_job,
    engine_job,
    fleet_job,
    journal_job,
    live_job,
    mot_job,
    multistream_job,
    pipeline_job,
    soak_job,
    tracker_job,
    tune_job,
)
from detstream.stream.commands.plugins import add_plugins

#: The jobs in the order ``detstream bench --help`` lists them.
JOBS = (engine_job, pipeline_job, multistream_job, fleet_job, live_job, tracker_job, mot_job,
        tune_job, soak_job, journal_job, analytics_job, alerts_job)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``detstream bench`` and every job to ``commands``."""
    parser = commands.add_parser("bench", help="benchmarks: engines and the pipeline",
                                 epilog=engine_job.EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)
    for job in JOBS:
        job.register(jobs)
    add_plugins("detstream.bench", jobs)  # `bench demo` comes with the demo package
