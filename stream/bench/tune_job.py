"""``detstream bench tune``: its arguments and handler (the benchmarks are ``tune.py``, and
``tune_public.py`` for ``--public-root``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from detstream.engines.data.synthetic.config import parse_size
from detstream.engines.errors import UserInputError
from detstream.stream.bench import job
from detstream.stream.bench.mot_job import scene_kinds
from detstream.stream.commands.args import non_negative_int


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench tune`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "tune", run, help="tracker defaults by HOTA over many sequences, with leave-one-out",
        description="Scores every candidate value of each --param (the others at their "
                    "defaults) with botsort on the held-out scenes of bench mot (both "
                    "detection streams) and on public MOTChallenge sequences; prints each "
                    "value's mean HOTA, IDF1 and MOTA, the value chosen, and the "
                    "leave-one-out HOTA: the mean, over sequences, of the value chosen without "
                    "each one. With --public-root DIR the choice is made on the real "
                    "sequences under DIR instead (each at its seqinfo.ini frame rate and size): "
                    "by TrackEval's combined HOTA over all of them, checked by "
                    "leave-one-sequence-out (each sequence tracked with the setting best on the "
                    "others, those outputs scored together), with the synthetic scenes' mean "
                    "HOTA beside as a second check (--scenes 0: none); --grid adds the "
                    "cartesian product of its parameters as one more choice.",
        epilog="examples:\n  detstream bench tune --param lost_seconds=0.5,1,2 "
               "--param match_cost=0.7,0.8,0.9 --kinds all --scenes 16 "
               "--public ../shared/data/mot15/TUD-Campus --json tune.json\n"
               "  detstream bench tune --public-root ../shared/data/mot15 --scenes 0 "
               "--param lost_seconds=1.5,2.5,4 --json tune-mot15.json\n"
               "  detstream bench tune --public-root ../shared/data/mot15 --model none "
               "--scenes 4 --grid match_cost=0.7,0.8 --grid high_score=0.4,0.5")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="a tracker parameter and its candidate values, varied alone "
                             "(repeat for more)")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="with --public-root: a parameter of a joint grid; every "
                             "combination of the --grid values is scored (repeat for each "
                             "parameter)")
    parser.add_argument("--public-root", type=Path, default=None, metavar="DIR",
                        help="choose on every real MOTChallenge sequence under DIR (det.txt, "
                             "gt.txt and seqinfo.ini in each folder) by TrackEval's combined "
                             "HOTA, with leave-one-sequence-out")
    parser.add_argument("--scenes", type=non_negative_int, default=16,
                        help="held-out synthetic scenes (default 16; 0: none)")
    job.add_scene_arguments(parser)
    parser.add_argument("--kinds", default="all", metavar="KIND,...",
                        help="scene kinds as for bench mot (default all)")
    job.add_detector_arguments(parser)
    job.add_run_options(parser, conf=True)
    parser.add_argument("--public", action="append", default=[], metavar="DIR[:FPS[:WxH]]",
                        help="a MOTChallenge folder with det.txt and gt.txt, its frame rate and "
                             "frame size (default: its seqinfo.ini's; a size otherwise unknown)")
    job.add_json_argument(parser)


def parse_public(text: str) -> tuple[Path, float | None, tuple[int, int] | None]:
    """``--public``'s ``DIR``, ``DIR:FPS`` or ``DIR:FPS:WxH`` → (folder, frame rate or None:
    seqinfo.ini's, frame size or None)."""
    folder, rate, size = text, None, None
    if not Path(text).is_dir():
        folder, _, last = text.rpartition(":")
        if "x" in last.lower():  # DIR:FPS:WxH
            try:
                size = parse_size(last)
            except UserInputError:
                folder = ""
            folder, _, last = folder.rpartition(":")
        try:
            rate = float(last)
        except ValueError:
            rate = 0.0
    if not folder or (rate is not None and rate <= 0) \
            or (size is not None and min(size) <= 0) \
            or not (Path(folder) / "det.txt").is_file() \
            or not (Path(folder) / "gt.txt").is_file() \
            or (rate is None and not (Path(folder) / "seqinfo.ini").is_file()):
        raise UserInputError(f"--public {text!r}: give DIR, DIR:FPS or DIR:FPS:WxH, DIR "
                             "holding det.txt and gt.txt (MOTChallenge; without FPS, also "
                             "seqinfo.ini)")
    return Path(folder), rate, size


def _check(args: argparse.Namespace) -> None:
    """One clear line for a combination of options that cannot tune anything."""
    if not args.param and not args.grid:
        raise UserInputError("give the candidates: --param NAME=V1,V2,... (or, with "
                             "--public-root, --grid NAME=V1,V2,...)")
    if args.public_root is None and args.grid:
        raise UserInputError("--grid chooses on real sequences: give --public-root DIR")
    if args.public_root is not None and args.public:
        raise UserInputError("give --public-root DIR (every sequence under it) or --public "
                             "DIR:FPS, not both")
    if args.public_root is None and not args.scenes and not args.public:
        raise UserInputError("nothing to tune on: give --scenes N, --public or --public-root")


def run(args: argparse.Namespace) -> int:
    """Score every candidate; print the choice and its leave-one-out check."""
    from detstream.stream.bench.mot import model_detector, scene_configs
    from detstream.stream.bench.tune import bench_tune, parse_candidates, print_tune

    _check(args)
    params = [parse_candidates(text) for text in args.param]
    grid = [parse_candidates(text, "--grid") for text in args.grid]
    public = [parse_public(text) for text in args.public]
    configs = scene_configs(args.scenes, args.frames, parse_size(args.size), 30.0,
                            kinds=scene_kinds(args.kinds)) if args.scenes else []
    detector = model_detector(args.model, args.backend, args.conf) \
        if args.model != "none" and configs else None
    if args.public_root is not None:
        from detstream.stream.bench.tune_public import print_tune_public, tune_public

        report = tune_public(args.public_root, configs, detector, params, grid, progress=job.log)
        print_tune_public(report)
    else:
        report = bench_tune(configs, detector, params, public, progress=job.log)
        print_tune(report)
    job.write_json(args.json, report)
    return 0
