"""``detstream bench tracker``: frames per second of the trackers and the camera-motion
estimate.

The trackers run alone on a MOTChallenge detections file (no images, so no camera-motion or
cut detection), repeated to a few seconds, optionally again with random unit embeddings on
every detection (appearance fusion, as for a model with an embedding head); the camera-motion
estimate runs on rendered frames of a panning synthetic scene.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from detstream.engines.data.mot import read_mot
from detstream.engines.data.synthetic import SceneConfig, SyntheticScene, parse_size
from detstream.engines.spec import Detections
from detstream.stream.bench.common import quiet
from detstream.stream.track import make_tracker
from detstream.stream.track.motion import CameraMotion


def read_detection_frames(path: Path) -> list[Detections]:
    """Every frame of a MOTChallenge detections file, empty ones included (frame 1 first).

    Raises:
        UserInputError: a missing, empty or malformed file.
    """
    detections = read_mot(path, empty_ok=False)
    last = max(detections, default=0)
    return [detections.get(i, Detections.empty()) for i in range(1, last + 1)]


def with_embeddings(frames: list[Detections], dim: int, seed: int = 0) -> list[Detections]:
    """``frames`` with a random unit vector of width ``dim`` per detection in
    ``data["embedding"]`` (the cost of appearance fusion, not its accuracy)."""
    rng = np.random.default_rng(seed)
    out = []
    for dets in frames:
        vectors = rng.normal(size=(len(dets), dim)).astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        out.append(dets.replace(data={**dets.data, "embedding": vectors}))
    return out


def tracker_fps(name: str, frames: list[Detections], fps: float, seconds: float) -> float:
    """Frames per second of tracker ``name`` on ``frames``, replayed (a fresh tracker each
    time) for at least ``seconds``."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        tracker = make_tracker(name, fps)
        for dets in frames:
            tracker.update(dets)
        done += len(frames)
    return done / (time.perf_counter() - start)


def panning_frames(size: tuple[int, int]) -> list[np.ndarray]:
    """60 rendered frames of a panning synthetic scene with ten objects, ``(width, height)``."""
    width, height = size
    config = SceneConfig(width=width, height=height, fps=30, frames=60, seed=11,
                         camera_motion=True, objects=10)
    return [image for image, _ in SyntheticScene(config)]


def camera_motion_fps(images: list[np.ndarray], seconds: float) -> float:
    """Frames per second of the camera-motion estimate over ``images``, replayed (reset each
    time) for at least ``seconds``."""
    motion = CameraMotion()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        motion.reset()
        for image in images:
            motion.estimate(image)
        done += len(images)
    return done / (time.perf_counter() - start)


def bench_tracker(dets: Path, fps: float = 30.0, trackers: list[str] | None = None,
                  size: str = "1280x720", seconds: float = 3.0,
                  show: Callable[[str], None] = quiet, embed_dims: Sequence[int] = ()) -> dict:
    """Time each tracker on ``dets`` and the camera-motion estimate at ``size`` (``WxH``).

    With ``embed_dims``, each tracker is also timed with random unit embeddings of each width
    on every detection (reported as ``NAME+emb32``).

    ``show`` gets a line per figure as it is measured (:func:`tracker_line`,
    :func:`camera_motion_line`).

    Returns:
        ``{"dets", "frames", "trackers": {name: frames/s}, "camera_motion_fps",
        "camera_motion_size"}``.

    Raises:
        UserInputError: a bad detections file, tracker name or size.
    """
    frame_size = parse_size(size)
    frames = read_detection_frames(dets)
    result: dict = {"dets": str(dets), "frames": len(frames), "trackers": {}}
    embedded = {dim: with_embeddings(frames, dim) for dim in embed_dims}
    for name in trackers or ["bytetrack", "botsort"]:
        rate = tracker_fps(name, frames, fps, seconds)
        result["trackers"][name] = round(rate, 1)
        show(tracker_line(name, rate, dets, len(frames)))
        for dim, replay in embedded.items():
            rate = tracker_fps(name, replay, fps, seconds)
            result["trackers"][f"{name}+emb{dim}"] = round(rate, 1)
            show(tracker_line(f"{name}+emb{dim}", rate, dets, len(frames)))
    rate = camera_motion_fps(panning_frames(frame_size), seconds)
    result["camera_motion_fps"] = round(rate, 1)
    result["camera_motion_size"] = size
    show(camera_motion_line(rate, size))
    return result


def tracker_line(name: str, rate: float, dets: Path, frames: int) -> str:
    return (f"{name:<16} {rate:>9.0f} frames/s on {dets.name} ({frames} frames, "
            "detections only)")


def camera_motion_line(rate: float, size: str) -> str:
    return f"camera motion {rate:>6.0f} frames/s at {size}"
