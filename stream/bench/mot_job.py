"""``detstream bench mot``: its arguments and handler (the benchmarks are ``mot.py`` for the
rendered scenes and ``public.py`` for real sequences)."""

from __future__ import annotations

import argparse
from pathlib import Path

from detstream.engines.errors import UserInputError
from detstream.stream.bench import job
from detstream.stream.bench.scene_kinds import DEFAULT_KINDS, SCENE_KINDS
from detstream.stream.commands.args import add_tracker_arguments, positive_float, positive_int


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench mot`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "mot", run,
        help="tracking accuracy (HOTA, MOTA, IDF1) on held-out synthetic scenes or real "
             "MOTChallenge sequences",
        description="Renders held-out synthetic scenes (seeds from 1000; the --kinds in turn, "
                    "by default a static camera and a moving one) and tracks two detection "
                    "streams with each tracker variant: the model's detections, and the truth "
                    "degraded (jitter, dropped and false boxes). TrackEval scores all scenes, "
                    "the static ones, the moving ones and each kind. With --public DIR it "
                    "renders nothing and instead tracks every real sequence under DIR (folders "
                    "with det.txt, gt.txt and seqinfo.ini) at its own frame rate and size, as "
                    "detstream track does, and scores two outputs per sequence and TrackEval's "
                    "combined over all of them: online (track --no-interpolate) and gap-filled "
                    "(track's default output).",
        epilog="examples:\n  detstream bench mot --scenes 6 --json runs/bench/mot.json\n"
               "  detstream bench mot --model none --scenes 10\n"
               "  detstream bench mot --kinds all --scenes 16\n"
               "  detstream bench mot --public ../shared/data/mot15 --json mot15.json\n"
               "  detstream bench mot --public ../shared/data/mot15 --tracker bytetrack "
               "--config tracker.yaml")
    parser.add_argument("--public", type=Path, default=None, metavar="DIR",
                        help="score the real MOTChallenge sequences under DIR instead of rendered "
                             "scenes (the scene and model options do not apply)")
    add_tracker_arguments(parser, default=None, when="with --public: ")
    parser.add_argument("--scenes", type=positive_int, default=None,
                        help="number of scenes (default 6)")
    job.add_scene_arguments(parser)
    parser.add_argument("--fps", type=positive_float, default=30.0,
                        help="frame rate (default 30)")
    job.add_detector_arguments(parser)
    parser.add_argument("--kinds", default="static,moving", metavar="KIND,...",
                        help=f"scene kinds in turn, comma-separated: {', '.join(SCENE_KINDS)}; "
                             f"or all (default {','.join(DEFAULT_KINDS)})")
    job.add_run_options(parser, conf=True)
    job.add_json_argument(parser)


def scene_kinds(text: str) -> tuple[str, ...]:
    """``--kinds``: ``all`` or a comma list (``mot.py`` rejects a kind it does not know)."""
    if text.strip() == "all":
        return tuple(SCENE_KINDS)
    return tuple(k.strip() for k in text.split(",") if k.strip())


def run(args: argparse.Namespace) -> int:
    """Score every tracker variant on the rendered scenes, or the real ``--public`` ones."""
    from detstream.stream.bench.mot import bench_mot, print_mot

    if args.public is not None:
        return _run_public(args)
    if args.tracker is not None or args.config is not None:
        raise UserInputError("--tracker and --config apply to --public sequences; the scenes "
                             "are tracked with every variant of bench mot")
    report = bench_mot(args.model, args.backend, args.conf, args.scenes or 6, args.frames,
                       args.size, args.fps, progress=job.log, kinds=scene_kinds(args.kinds))
    print_mot(report)
    job.write_json(args.json, report)
    return 0


def _run_public(args: argparse.Namespace) -> int:
    """``bench mot --public DIR``: the real sequences only."""
    from detstream.stream.bench.public import bench_public, print_public

    if args.scenes is not None:
        raise UserInputError("--public scores real sequences and renders no scenes; run bench "
                             "mot --scenes N on its own for those")
    report = bench_public(args.public, args.tracker or "botsort", args.config, progress=job.log)
    print_public(report)
    job.write_json(args.json, report)
    return 0
