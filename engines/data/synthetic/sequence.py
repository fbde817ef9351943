"""Write a synthetic scene as a MOTChallenge-style sequence with an H.264 video.

Layout of the output folder::

    video.mp4        H.264, the scene's size and frame rate
    gt/gt.txt        MOTChallenge ground truth (frame, id, x, y, w, h, consider, class+1, vis)
    seqinfo.ini      [Sequence] name, frameRate, seqLength, imWidth, imHeight (+ [detstream])
    scene.json       the SceneConfig, enough to render the same scene again
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detstream.engines.data.mot import MotWriter, SeqInfo, write_seqinfo
from detstream.engines.data.synthetic.config import SceneConfig
from detstream.engines.data.synthetic.scene import SyntheticScene
from detstream.engines.data.video import VideoWriter


@dataclass(frozen=True)
class SequenceSummary:
    """What :func:`write_sequence` wrote."""

    folder: Path
    frames: int
    tracks: int
    boxes: int
    seconds: float
    interrupted: bool = False


def write_sequence(out: str | Path, config: SceneConfig,
                   progress: Callable[[int], None] | None = None,
                   stop: threading.Event | None = None) -> SequenceSummary:
    """Render ``config`` (which must have a frame count) into ``out``.

    Setting ``stop`` ends the sequence after the current frame (``interrupted`` in the summary).
    The video and ground truth are finalised also when an exception ends rendering: both then
    hold the frames written so far and ``seqinfo.ini`` says how many.
    """
    if config.frames is None:
        raise ValueError("write_sequence needs a scene with a frame count")
    out = Path(out)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    (out / "scene.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n",
                                    encoding="utf-8")
    start = time.perf_counter()
    frames = boxes = 0
    tracks: set[int] = set()
    try:
        with VideoWriter(out / "video.mp4", config.width, config.height, config.fps) as video, \
                MotWriter(out / "gt" / "gt.txt", ground_truth=True) as gt:
            for image, truth in SyntheticScene(config):
                if stop is not None and stop.is_set():
                    break
                video.write(image)
                gt.write(frames + 1, truth)
                frames += 1
                boxes += len(truth)
                tracks.update(truth.track_ids.tolist())
                if progress is not None:
                    progress(1)
    finally:
        write_seqinfo(
            out / "seqinfo.ini",
            SeqInfo(name=out.resolve().name, frame_rate=config.fps, length=frames,
                    width=config.width, height=config.height, im_dir="video.mp4",
                    im_ext=".mp4"),
            extra={"seed": str(config.seed), "classNames": ",".join(config.class_names)},
        )
    return SequenceSummary(out, frames, len(tracks), boxes, time.perf_counter() - start,
                           interrupted=frames < config.frames)


def benchmark_scene(config: SceneConfig) -> tuple[int, float]:
    """Render every frame of ``config`` (no encoding, no files) and return (frames, seconds)."""
    frames = 0
    start = time.perf_counter()
    for _ in SyntheticScene(config):
        frames += 1
    return frames, time.perf_counter() - start
