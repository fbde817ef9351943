"""``detstream bench multistream``: its arguments and handler (the benchmark is
``multistream.py``)."""

from __future__ import annotations

import argparse

from detstream.engines.errors import UserInputError
from detstream.stream.bench import job
from detstream.stream.bench.cameras import DEFAULT_KIND, FEEDS, camera_uri, scene_argument
from detstream.stream.bench.scene_kinds import SCENE_KINDS
from detstream.stream.commands.args import (
    bounded_int,
    frame_size,
    non_negative_float,
    positive_float,
    positive_int,
)

#: ``--streams`` and ``--frames`` without ``--live`` when not given.
STREAMS, FRAMES = 4, 300
#: ``--cameras``, ``--seconds``, ``--warmup`` and ``--size`` with ``--live`` when not given.
CAMERAS, SECONDS, WARMUP, SIZE = "1,2,3,4", 30.0, 5.0, "640x480"
#: The options of each mode (the other mode refuses them).
_BATCHED = ("streams", "frames")
_LIVE = ("cameras", "seconds", "warmup", "size", "source_kind", "scene", "feed", "run_options")


def _flag(name: str) -> str:
    return "--option" if name == "run_options" else "--" + name.replace("_", "-")


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench multistream`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "multistream", run, runs_pipeline=True,
        help="one batched multi-stream process vs N separate processes; with --live, cameras "
             "per machine",
        description="Runs N streams of the same source two ways on this machine: one "
                    "`detstream run` process with N --source (one model, batched inference) "
                    "and N separate single-stream processes at the same time, each with "
                    "tracking and JSON Lines output, and compares their aggregate FPS "
                    "(model loading left out of both).\n\n"
                    "With --live: cameras per machine. For each count in --cameras, that many "
                    "paced synthetic cameras (640x480 at 30 fps, each its own seed) run at "
                    "once in one process (one model, one inference service, every frame "
                    "tracked and output at the camera's rate) for --seconds after --warmup; "
                    "it prints each camera's output FPS, latency and detector frames a second, "
                    "and the most cameras that all held 29.5 FPS, against the target (2; 4 on "
                    "static scenes with motion gating).",
        epilog="examples:\n  detstream bench multistream --source bikes.mp4 --streams 4 "
               "--json multi.json\n"
               "  detstream bench multistream --source clip.mp4 --streams 8 --model yolox-nano\n"
               "  detstream bench multistream --live --cameras 1,2,3,4,6 --seconds 60\n"
               "  detstream bench multistream --live --source-kind static --cameras 2,4,6\n"
               "  detstream bench multistream --live --source "
               "'synthetic://?seed={seed}&size=640x480&fps=30&quiet=30&live=1'")
    parser.add_argument("--source", default=None,
                        help="a video file, folder or synthetic:// (required without --live); "
                             "with --live, each camera's URI, {seed} becoming its number "
                             "(default: the synthetic camera of --size and --source-kind)")
    parser.add_argument("--streams", type=bounded_int(2, 64), default=None,
                        help=f"without --live: streams on each side (default {STREAMS})")
    job.add_pipeline_arguments(parser)
    parser.add_argument("--frames", type=positive_int, default=None,
                        help=f"without --live: frames per stream (default {FRAMES})")
    parser.add_argument("--output-video", action="store_true",
                        help="also write each stream's H.264 video")
    live = parser.add_argument_group("cameras per machine (--live)")
    live.add_argument("--live", action="store_true",
                      help="count the paced cameras that all hold their frame rate at once")
    live.add_argument("--cameras", type=job.int_list, default=None,
                      help=f"camera counts to run, in turn (default {CAMERAS})")
    live.add_argument("--seconds", type=positive_float, default=None,
                      help=f"seconds measured per count, after the warm-up (default "
                           f"{SECONDS:g})")
    live.add_argument("--warmup", type=non_negative_float, default=None,
                      help=f"seconds each count runs before it is measured (default "
                           f"{WARMUP:g})")
    live.add_argument("--size", type=frame_size, default=None,
                      help=f"the synthetic cameras' frame size (default {SIZE})")
    live.add_argument("--source-kind", choices=tuple(SCENE_KINDS), default=None,
                      help=f"the synthetic cameras' scene: static (a still camera, where "
                           f"motion gating helps), moving, ... (default {DEFAULT_KIND})")
    live.add_argument("--scene", type=scene_argument, default=None, metavar="PARAMS",
                      help="more synthetic:// parameters for the cameras, such as quiet=30")
    live.add_argument("--feed", choices=FEEDS, default=None,
                      help="how the synthetic cameras reach the pipeline: h264 (recorded "
                           "first, played as paced live streams and decoded here, as an IP "
                           "camera's; default) or render (rendered in this process as they "
                           "play: the machine also pays the synthetic world)")
    job.add_option_argument(live)
    job.add_json_argument(parser)


def _check_mode(args: argparse.Namespace) -> None:
    """The options of the other mode are refused in one line."""
    given = [name for name in (_BATCHED if args.live else _LIVE) if getattr(args, name)]
    if given:
        use = ("not used with --live (give --cameras: the camera counts to run)" if args.live
               else "only used with --live")
        raise UserInputError(f"{_flag(given[0])} is {use}")
    if not args.live and args.source is None:
        raise UserInputError("--source is required without --live (a video file, folder or "
                             "synthetic:// to run as N streams)")
    if args.live and args.source is not None and (args.size or args.source_kind or args.scene):
        raise UserInputError("--size, --source-kind and --scene make the synthetic cameras; "
                             "with --source give them in its URI instead")


def run(args: argparse.Namespace) -> int:
    """Run the streams batched in one process and as separate processes and compare; with
    ``--live``, count the cameras that hold their rate."""
    _check_mode(args)
    if args.live:
        from detstream.stream.bench.multistream import bench_cameras, print_cameras

        template = args.source or camera_uri(args.size or frame_size(SIZE), seed="{seed}",
                                             kind=args.source_kind or DEFAULT_KIND,
                                             scene=args.scene)
        result = bench_cameras(template, args.cameras or job.int_list(CAMERAS),
                               job.run_config(args), args.seconds or SECONDS,
                               WARMUP if args.warmup is None else args.warmup,
                               video=args.output_video, log=job.log,
                               feed=args.feed or FEEDS[0])
        print_cameras(result)
        job.write_json(args.json, result)
        return 0
    from detstream.stream.bench.multistream import bench_multistream, print_multistream

    result = bench_multistream(args.source, args.streams or STREAMS, job.bench_model(args),
                               args.frames or FRAMES, args.tracker, video=args.output_video,
                               log=job.log)
    print_multistream(result)
    job.write_json(args.json, result)
    return 0
