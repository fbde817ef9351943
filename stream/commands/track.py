"""``detstream track``: track MOTChallenge detections without images."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from detstream.stream.commands.args import (
    add_tracker_arguments,
    frame_size,
    non_negative_float,
    output_file,
    positive_float,
)
from detstream.stream.run_config import RUN_OPTIONS
from detstream.stream.track.interpolate import GapFill

if TYPE_CHECKING:
    from collections.abc import Mapping

    from detstream.engines.data.mot import SeqInfo
    from detstream.engines.spec import Detections
    from detstream.stream.track import Tracker

EXAMPLES = """examples:
  detstream track --dets TUD-Campus/det.txt --out tracks.txt --fps 25 --size 640x480
  detstream track --dets det.txt --out tracks.txt --tracker bytetrack --config tracker.yaml
  detstream track --dets det.txt --out online.txt --no-interpolate
  detstream track --dets det.txt --out tracks.txt --max-gap 0.5 --max-jump 0.8
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "track", help="track MOTChallenge detections (no images) into MOTChallenge tracks",
        description="Read detections (frame,-1,x,y,w,h,score,...) and write tracks "
                    "(frame,id,x,y,w,h,score,-1,-1,-1). Without images there is no "
                    "camera-motion compensation and no scene-cut detection. Since the whole "
                    "sequence is known, each track is then filled in linearly across the frames "
                    "it was lost (occlusions the tracker bridged) where the gap is short and "
                    "ends where the track's motion predicted; --no-interpolate writes the "
                    "online tracker's output as it was. The frame rate (from --fps, else "
                    "seqinfo.ini beside the detections, else 30) scales the tracker's lost-track "
                    "buffer and the longest gap filled; the frame size (from --size, else "
                    "seqinfo.ini) keeps boxes coasted through a missed detection inside the "
                    "picture. The command says which of each it used.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dets", type=Path, required=True, help="MOTChallenge detections")
    parser.add_argument("--out", type=output_file, required=True, help="tracks file to write")
    add_tracker_arguments(parser, default=RUN_OPTIONS["tracker"].default)
    parser.add_argument("--fps", type=positive_float, default=None,
                        help="frame rate (default: seqinfo.ini next to the detections, else 30)")
    parser.add_argument("--size", type=frame_size, default=None, metavar="WxH",
                        help="frame size in pixels (default: seqinfo.ini next to the "
                             "detections, else unknown)")
    parser.add_argument("--no-interpolate", dest="interpolate", action="store_false",
                        help="write the online output, without filling gaps inside tracks")
    parser.add_argument("--max-gap", type=non_negative_float, default=None, metavar="SECONDS",
                        help=f"longest gap filled (default {GapFill.max_seconds:g} s)")
    parser.add_argument("--max-jump", type=non_negative_float, default=None, metavar="SIZES",
                        help="fill a gap only if the track is found again within this many "
                             "box sizes of where its motion predicted (default "
                             f"{GapFill.max_jump:g})")
    parser.set_defaults(handler=run)


def _seqinfo(dets: Path) -> tuple[Path, SeqInfo] | None:
    """The ``seqinfo.ini`` beside the detections (or one folder up) and its contents."""
    from detstream.engines.data.mot import read_seqinfo

    for folder in (dets.parent, dets.parent.parent):
        ini = folder / "seqinfo.ini"
        if ini.is_file():
            return ini, read_seqinfo(ini)
    return None


def frame_rate(args: argparse.Namespace) -> tuple[float, str]:
    """The frame rate to track at, and where it came from (said to the user)."""
    if args.fps is not None:
        return args.fps, "--fps"
    found = _seqinfo(args.dets)
    if found is not None:
        return float(found[1].frame_rate), str(found[0])
    return 30.0, ("assumed: no --fps and no seqinfo.ini beside the detections; give --fps if "
                  "the sequence was filmed at another rate")


def frames_size(args: argparse.Namespace) -> tuple[tuple[int, int] | None, str]:
    """The frames' size, and where it came from (said to the user); None if unknown."""
    if args.size is not None:
        return args.size, "--size"
    found = _seqinfo(args.dets)
    if found is not None and found[1].width > 0 and found[1].height > 0:
        return (found[1].width, found[1].height), str(found[0])
    return None, ("unknown: no --size and no imWidth/imHeight in a seqinfo.ini; boxes coasted "
                  "through missed detections may run past the picture's edges")


def track_detections(tracker: Tracker, detections: Mapping[int, Detections]
                     ) -> dict[int, Detections]:
    """The online tracker's output on frames 1 to the last frame with detections (a frame
    without rows is given none): what ``detstream track --no-interpolate`` writes, and what
    its gap filling starts from."""
    from detstream.engines.spec import Detections

    return {frame: tracker.update(detections.get(frame, Detections.empty()))
            for frame in range(1, max(detections, default=0) + 1)}


def run(args: argparse.Namespace) -> int:
    from detstream.engines.data.mot import MotWriter, read_mot
    from detstream.engines.paths import writable_dir
    from detstream.stream.track import make_tracker
    from detstream.stream.track.interpolate import interpolate_tracks

    detections = read_mot(args.dets, empty_ok=False)
    fps, origin = frame_rate(args)
    print(f"frame rate {fps:g} fps ({origin})", file=sys.stderr)
    size, size_origin = frames_size(args)
    print(f"frame size {size[0]}x{size[1]} ({size_origin})" if size
          else f"frame size {size_origin}", file=sys.stderr)
    fill = GapFill(**{k: v for k, v in (("max_seconds", args.max_gap),
                                        ("max_jump", args.max_jump)) if v is not None})
    tracker = make_tracker(args.tracker, fps, args.config, frame_size=size)
    writable_dir(args.out.parent)
    last = max(detections, default=0)
    start = time.perf_counter()
    results = track_detections(tracker, detections)
    seconds = time.perf_counter() - start
    added = 0
    if args.interpolate:
        results, added = interpolate_tracks(results, fps, fill)
    with MotWriter(args.out) as writer:
        for frame, result in results.items():
            writer.write(frame, result)
    boxes = sum(len(r) for r in results.values())
    filled = (f", {added} of them filled in across gaps of at most {fill.max_seconds:g} s "
              f"({fill.max_frames(fps)} frames)" if args.interpolate else "")
    print(f"{args.tracker}: {last} frames at {last / max(seconds, 1e-9):.0f} frames/s, "
          f"{tracker.next_id - 1} tracks started, {boxes} boxes{filled}, written to {args.out}")
    return 0
