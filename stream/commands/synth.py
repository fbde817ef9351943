"""``detstream synth``: render synthetic videos with ground truth, or detection datasets."""

from __future__ import annotations

import argparse
import os
import sys

from detstream.engines.data.synthetic import SceneConfig
from detstream.engines.data.synthetic.dataset import DatasetSpec, write_dataset
from detstream.engines.data.synthetic.sequence import benchmark_scene, write_sequence
from detstream.engines.errors import UserInputError
from detstream.engines.paths import writable_dir
from detstream.engines.progress import progress_bar
from detstream.stream.commands.args import (
    bounded_int,
    fraction,
    frame_size,
    non_negative_int,
    positive_float,
    positive_int,
    worker_count,
)
from detstream.stream.signals import graceful_stop

#: The most frames or images one command renders: ten million frames are 3.9 days of 30 fps
#: video (a larger count is a typo that would run for months).
MOST = 10_000_000

VIDEO_EXAMPLES = """examples:
  detstream synth video runs/synth/scene0 --frames 300 --size 1280x720 --fps 30 --seed 0
  detstream synth video runs/synth/pan --frames 600 --camera-motion --objects 12 --seed 7
  detstream synth video runs/synth/bench --frames 300 --size 1280x720 --bench
"""

DATASET_EXAMPLES = """examples:
  detstream synth dataset runs/synth/data --train 20000 --val 2000 --imgsz 320 --seed 0
  detstream synth dataset /tmp/small --train 200 --val 50 --seed 3 --workers 1
"""


def register(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser(
        "synth", help="render synthetic videos with ground truth, or detection datasets",
        description="The synthetic world: seeded scenes of shapes (circle, triangle, square, "
                    "star) moving among distractors, with exact ground truth.")
    kinds = synth.add_subparsers(dest="synth_kind", metavar="KIND", required=True)

    video = kinds.add_parser(
        "video", help="a video (H.264 .mp4) with MOTChallenge ground truth",
        description="Render one scene to OUT_DIR: video.mp4, gt/gt.txt, seqinfo.ini, "
                    "scene.json. The same seed always gives the same ground truth.",
        epilog=VIDEO_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    video.add_argument("out", metavar="OUT_DIR", help="folder to write (created if missing)")
    video.add_argument("--frames", type=bounded_int(1, MOST), default=300,
                       help="frames (default 300)")
    video.add_argument("--size", type=frame_size, default=(1280, 720), metavar="WxH",
                       help="frame size (default 1280x720)")
    video.add_argument("--fps", type=positive_float, default=30.0, help="frame rate (default 30)")
    video.add_argument("--seed", type=non_negative_int, default=0, help="scene seed (default 0)")
    video.add_argument("--objects", type=bounded_int(0, 200), default=8,
                       help="mean number of objects in view (default 8)")
    video.add_argument("--camera-motion", action="store_true",
                       help="pan and shake the camera (global motion)")
    video.add_argument("--bench", action="store_true",
                       help="only measure how fast frames and ground truth are generated; "
                            "write nothing")
    video.set_defaults(handler=run_video)

    dataset = kinds.add_parser(
        "dataset", help="a YOLO-format detection dataset (images, labels, data.yaml)",
        description="Sample frames from many scenes into OUT_DIR/images/{train,val}, "
                    "OUT_DIR/labels/{train,val} and OUT_DIR/data.yaml. Validation scenes use "
                    "seeds never used for training.",
        epilog=DATASET_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    dataset.add_argument("out", metavar="OUT_DIR", help="folder to write (created if missing)")
    dataset.add_argument("--train", type=bounded_int(1, MOST), required=True,
                         help="training images")
    dataset.add_argument("--val", type=bounded_int(0, MOST), required=True,
                         help="validation images")
    dataset.add_argument("--imgsz", type=bounded_int(1, 4096), default=320,
                         help="longer image side in pixels (default 320)")
    dataset.add_argument("--seed", type=non_negative_int, default=0, help="master seed")
    dataset.add_argument("--min-visibility", type=fraction, default=0.3,
                         help="label only targets at least this visible (default 0.3)")
    dataset.add_argument("--images-per-scene", type=positive_int, default=6,
                         help="frames sampled from each scene (default 6)")
    dataset.add_argument("--workers", type=worker_count, default=os.cpu_count() or 1,
                         help="rendering processes (default: all cores)")
    dataset.set_defaults(handler=run_dataset)


def run_video(args: argparse.Namespace) -> int:
    width, height = args.size
    config = SceneConfig(width=width, height=height, fps=args.fps, frames=args.frames,
                         seed=args.seed, objects=args.objects, camera_motion=args.camera_motion)
    if args.bench:
        frames, seconds = benchmark_scene(config)
        print(f"synthetic world {width}x{height}: {frames} frames in {seconds:.2f} s = "
              f"{frames / seconds:.0f} frames/s (frames + ground truth, no encoding)")
        return 0
    out = writable_dir(args.out)
    with graceful_stop() as stop, progress_bar(total=config.frames, unit="frame",
                                               desc="synth video") as bar:
        summary = write_sequence(out, config, progress=bar.update, stop=stop)
    rate = summary.frames / max(summary.seconds, 1e-9)
    print(f"wrote {summary.frames} frames, {summary.tracks} tracks, {summary.boxes} boxes to "
          f"{out} ({rate:.0f} frames/s with H.264 encoding)")
    if summary.interrupted:
        print(f"{args.prog}: interrupted after {summary.frames} of {config.frames} frames; "
              "the video and ground truth written so far are complete", file=sys.stderr)
        return 130
    return 0


def run_dataset(args: argparse.Namespace) -> int:
    if args.imgsz < 128:
        raise UserInputError(f"--imgsz {args.imgsz} is too small; use 128 or more (e.g. 320)")
    out = writable_dir(args.out)
    spec = DatasetSpec(train=args.train, val=args.val, imgsz=args.imgsz, seed=args.seed,
                       min_visibility=args.min_visibility,
                       images_per_scene=args.images_per_scene)
    with progress_bar(total=spec.train + spec.val, unit="img", desc="synth dataset") as bar:
        counts = write_dataset(out, spec, workers=args.workers, progress=bar.update)
    print(f"wrote {counts['train_images']} training images ({counts['train_boxes']} boxes) and "
          f"{counts['val_images']} validation images ({counts['val_boxes']} boxes); "
          f"dataset file: {out / 'data.yaml'}")
    return 0
