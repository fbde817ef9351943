"""``detstream bench live``: its arguments and handler (the benchmark is ``live.py``)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from detstream.stream.bench import job
from detstream.stream.bench.cameras import DEFAULT_KIND, camera_uri, scene_argument
from detstream.stream.bench.scene_kinds import SCENE_KINDS
from detstream.stream.commands.args import frame_size, input_file, positive_float

#: The synthetic cameras measured when no source is named (issue 36's two sizes).
DEFAULT_SIZES = "640x480,1280x720"
#: The model of ``--video`` files unless told: a COCO detector (people, cars, ...).
VIDEO_MODEL = "yolox-nano"


def size_list(text: str) -> list[tuple[int, int]]:
    """``640x480,1280x720``: frame sizes, each checked as ``--size`` is."""
    sizes = [frame_size(part.strip()) for part in text.split(",") if part.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError(f"expected sizes like {DEFAULT_SIZES}, got {text!r}")
    return sizes


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench live`` and its arguments on ``jobs``."""
    parser = job.declare(
        jobs, "live", run, runs_pipeline=True,
        help="paced live sources against file mode: FPS, latency and its drift, tracking "
             "scores, the issue 36 targets",
        description="Runs each live source as `detstream run` runs it (tracking, drawing, H.264 "
                    "output; every frame output at the camera's rate, the detector beside it) "
                    "for --seconds: output FPS, latency p50/p95 against the processing time, "
                    "and its drift between the first and last 30 s. Then the same frames read "
                    "as a file with the detector on every frame: a synthetic scene is scored "
                    "against its truth both ways (HOTA, IDF1, MOTA), and the live tracks "
                    "against the file run's (agreement). Each case is judged against the "
                    "targets of issue 36 (FPS >= the camera's rate - 0.5, no latency growth, "
                    "p50 <= 60 ms, p95 <= 100 ms, HOTA and IDF1 within 0.02 of file mode; "
                    "without truth, IDF1 >= 0.9 against file mode). Without --sizes, --source "
                    f"or --video: synthetic cameras of {DEFAULT_SIZES} at 30 fps.",
        epilog="examples:\n  detstream bench live --seconds 120 --json live.json\n"
               "  detstream bench live --sizes 640x480,1280x720 --video clip.mp4 "
               "--video-weights yolox_nano.onnx --seconds 120\n"
               "  detstream bench live --source 'synthetic://?seed=2&size=640x360&fps=25' "
               "--seconds 60\n"
               "  detstream bench live --source rtsp://camera/stream --seconds 600")
    parser.add_argument("--sizes", type=size_list, default=None, metavar="WxH,...",
                        help="synthetic cameras of these sizes at 30 fps, with --model (default "
                             f"{DEFAULT_SIZES} when no --source or --video is given)")
    parser.add_argument("--source-kind", choices=tuple(SCENE_KINDS), default=DEFAULT_KIND,
                        help="the synthetic cameras' scene: static, moving, ... (default "
                             f"{DEFAULT_KIND})")
    parser.add_argument("--scene", type=scene_argument, default=None, metavar="PARAMS",
                        help="more synthetic:// parameters for the cameras, such as objects=20")
    parser.add_argument("--source", action="append", default=[], metavar="URI",
                        help="a live source to measure with --model (repeat for more): "
                             "synthetic:// (paced; scored against its truth), a video file "
                             "(played at its frame rate), a camera or stream (no file run)")
    parser.add_argument("--video", action="append", type=input_file, default=[],
                        metavar="FILE",
                        help="a video file played as a paced live source with --video-model, "
                             "set against the same file processed frame by frame (repeat for "
                             "more)")
    parser.add_argument("--video-model", default=VIDEO_MODEL,
                        help=f"the model of --video files (default {VIDEO_MODEL})")
    parser.add_argument("--video-weights", type=input_file, default=None, metavar="PATH",
                        help="a file you already have for --video-model (no download)")
    job.add_pipeline_arguments(parser)
    parser.add_argument("--seconds", type=positive_float, default=120.0,
                        help="each live run's duration (default 120)")
    job.add_option_argument(parser)
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Measure every case; print its figures and the targets, met or not."""
    from detstream.stream.bench.live import bench_live, print_live, source_case

    config = job.run_config(args)
    sizes = args.sizes or ([] if args.source or args.video else size_list(DEFAULT_SIZES))
    cases = [source_case(camera_uri(size, kind=args.source_kind, scene=args.scene), config,
                         args.seconds, name=f"synthetic {size[0]}x{size[1]}")
             for size in sizes]
    cases += [source_case(uri, config, args.seconds) for uri in args.source]
    video = replace(config, model=args.video_model, weights=args.video_weights)
    cases += [source_case(str(path), video, args.seconds, name=Path(path).name)
              for path in args.video]
    result = bench_live(cases, args.seconds, log=job.log)
    print_live(result)
    job.write_json(args.json, result)
    return 0
