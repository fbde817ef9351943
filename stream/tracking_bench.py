"""Tracking accuracy on held-out synthetic scenes (``detstream bench mot``).

Each scene is rendered once; per frame, two detection streams are made from it:

- ``model``: the detector's boxes (the default model unless told otherwise), what a user's run
  would see;
- ``noisy-truth``: the scene's truth degraded the way detectors degrade it, so that the
  tracker is judged apart from the detector: boxes jittered in proportion to their size,
  objects less than 30% visible and a random share of the rest dropped, random scores, and a
  few low-score false boxes per frame.

Every tracker variant runs on both streams side by side (camera-motion compensation sees the
real frames), and TrackEval scores each against the scene's truth. Scene seeds start at 1000;
the training datasets derive their scene seeds by hashing, so these scenes are never trained on.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detstream.engines.data.mot import MotWriter, SeqInfo, write_mot, write_seqinfo
from detstream.engines.data.synthetic.config import SceneConfig
from detstream.engines.data.synthetic.scene import SyntheticScene
from detstream.engines.metrics.mot import MotScores, evaluate_mot
from detstream.engines.spec import Detections
from detstream.stream.sinks.truth import MIN_VISIBILITY
from detstream.stream.track import make_tracker
from detstream.stream.track.interpolate import interpolate_tracks

#: Tracker variants compared: name → (tracker, option overrides).
VARIANTS: dict[str, tuple[str, dict]] = {
    "bytetrack": ("bytetrack", {}),
    "botsort-no-cmc": ("botsort", {"camera_motion": False}),
    "botsort": ("botsort", {}),
}
#: Variants also scored with offline gap filling (as ``NAME+interpolate``, from the same run).
INTERPOLATED = ("botsort",)


@dataclass(frozen=True)
class Degradation:
    """How ``noisy-truth`` detections depart from the truth.

    Attributes:
        jitter: standard deviation of each box edge, as a fraction of the box's width/height.
        drop: share of visible objects missed at random in each frame.
        false_per_frame: mean number of false boxes per frame (Poisson), scored low.
    """

    jitter: float = 0.05
    drop: float = 0.1
    false_per_frame: float = 0.5


def degrade(truth: Detections, rng: np.random.Generator, size: tuple[int, int],
            how: Degradation = Degradation()) -> Detections:
    """Truth → detections as a mediocre detector would give them (see :class:`Degradation`)."""
    keep = truth.data["visibility"] >= MIN_VISIBILITY
    keep &= rng.random(len(truth)) >= how.drop
    boxes = truth.boxes[keep].astype(np.float64)
    wh = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    boxes = boxes + rng.normal(0.0, how.jitter, boxes.shape) * wh
    scores = rng.uniform(0.3, 1.0, len(boxes))
    classes = truth.class_ids[keep]
    n_false = rng.poisson(how.false_per_frame)
    if n_false:
        w, h = size
        side = rng.uniform(0.03, 0.15, (n_false, 1)) * h
        corner = rng.uniform(0, 1, (n_false, 2)) * (np.array([w, h]) - side)
        boxes = np.concatenate([boxes, np.hstack([corner, corner + side])])
        scores = np.concatenate([scores, rng.uniform(0.1, 0.6, n_false)])
        classes = np.concatenate([classes, rng.integers(0, len(truth.class_names), n_false)])
    w, h = size
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return Detections(boxes=boxes, scores=scores, class_ids=classes,
                      class_names=truth.class_names)


def scene_configs(scenes: int, frames: int, size: tuple[int, int], fps: float,
                  first_seed: int = 1000) -> list[SceneConfig]:
    """Held-out scenes: ten objects in view on average (so paths cross), occluders, and
    camera pan and jitter on every other scene. Object sizes are those of ``detstream run``'s
    default scene (a quarter of the frame height over 720 px is 48 px at the smallest)."""
    w, h = size
    return [SceneConfig(width=w, height=h, fps=fps, frames=frames, seed=first_seed + i,
                        objects=10, camera_motion=i % 2 == 1, min_size=48 * h / 720,
                        max_size_frac=0.35) for i in range(scenes)]


def bench_tracking(configs: list[SceneConfig],
                   detector: Callable[[np.ndarray], Detections] | None,
                   variants: dict[str, tuple[str, dict]] = VARIANTS,
                   interpolated: tuple[str, ...] = INTERPOLATED,
                   how: Degradation = Degradation(),
                   progress: Callable[[str], None] | None = None) -> dict:
    """Run every variant on every scene's detection streams and score them.

    Args:
        configs: the scenes.
        detector: frame (BGR) → detections, or None to skip the ``model`` stream.
        variants: tracker variants (see :data:`VARIANTS`).
        interpolated: variants whose output is also scored after gap filling.
        how: the degradation of ``noisy-truth``.
        progress: called with a line per finished scene.

    Returns:
        ``{"scenes": [...], "results": {stream: {variant: {"all": scores, SEQ: scores}}}}``
        with TrackEval's scores as dicts.
    """
    streams = ["noisy-truth"] + (["model"] if detector is not None else [])
    with tempfile.TemporaryDirectory(prefix="detstream-mot-bench-") as tmp:
        root = Path(tmp)
        for config in configs:
            name = _seq_name(config)
            gt_dir = root / "gt" / name
            (gt_dir / "gt").mkdir(parents=True)
            write_seqinfo(gt_dir / "seqinfo.ini", SeqInfo(name, config.fps, config.frames,
                                                          config.width, config.height))
            trackers = {(s, v): make_tracker(t, config.fps, dict(opts))
                        for s in streams for v, (t, opts) in variants.items()}
            tracks: dict[tuple[str, str], dict[int, Detections]] = {k: {} for k in trackers}
            rng = np.random.default_rng([config.seed, 0x7AC])
            with MotWriter(gt_dir / "gt" / "gt.txt", ground_truth=True) as gt:
                for index, (frame, truth) in enumerate(SyntheticScene(config)):
                    gt.write(index + 1, truth)
                    found = {"noisy-truth": degrade(truth, rng, (config.width, config.height),
                                                    how)}
                    if detector is not None:
                        found["model"] = detector(frame)
                    for (s, v), tracker in trackers.items():
                        tracks[s, v][index + 1] = tracker.update(found[s], frame)
            for (s, v), frames in list(tracks.items()):
                if v in interpolated:
                    tracks[s, f"{v}+interpolate"] = interpolate_tracks(frames)[0]
            for (s, v), frames in tracks.items():
                path = root / "pred" / s / v / f"{name}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_mot(path, frames.items())
            if progress is not None:
                progress(f"scene {name}: {config.frames} frames tracked")
        names = [_seq_name(c) for c in configs]
        groups = {"all": names, "static": [n for n in names if not n.endswith("-moving")],
                  "moving": [n for n in names if n.endswith("-moving")]}
        for group, members in groups.items():
            if group != "all" and members:
                for n in members:  # TrackEval scores a folder: one folder per group
                    shutil.copytree(root / "gt" / n, root / f"gt-{group}" / n)
        results: dict = {}
        scored = [*variants, *(f"{v}+interpolate" for v in interpolated if v in variants)]
        for s in streams:
            for v in scored:
                entry = {}
                for group, members in groups.items():
                    if not members:
                        continue
                    gt_root = root / ("gt" if group == "all" else f"gt-{group}")
                    combined, per_seq = evaluate_mot(gt_root, root / "pred" / s / v)
                    entry[group] = combined.to_dict()
                    if group == "all":
                        entry.update({k: m.to_dict() for k, m in per_seq.items()})
                results.setdefault(s, {})[v] = entry
    return {"scenes": names, "results": results}


def _seq_name(config: SceneConfig) -> str:
    return f"synth-{config.seed}" + ("-moving" if config.camera_motion else "")


def summary_rows(report: dict) -> list[tuple[str, str, str, MotScores]]:
    """``(stream, variant, group, scores)`` rows for all scenes, the static ones and the
    moving-camera ones: the table printed by ``detstream bench mot``."""
    return [(stream, variant, group, MotScores(**by_group[group]))
            for stream, by_variant in report["results"].items()
            for variant, by_group in by_variant.items()
            for group in ("all", "static", "moving") if group in by_group]
