"""``detstream bench mot``: tracking accuracy on held-out synthetic scenes.

Each scene is rendered once; per frame, two detection streams are made from it:

- ``model``: the detector's boxes (the default model unless told otherwise), what a user's run
  would see;
- ``noisy-truth``: the scene's truth degraded the way detectors degrade it, so that the
  tracker is judged apart from the detector: boxes jittered in proportion to their size,
  objects less than 30% visible and a random share of the rest dropped, random scores, and a
  few low-score false boxes per frame.

Every tracker variant runs on both streams side by side (camera-motion compensation sees the
real frames), and TrackEval scores each against the scene's truth, over all scenes, the static
ones and the moving-camera ones. Scene seeds start at 1000; the training datasets derive their
scene seeds by hashing, so these scenes are never trained on.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detstream.engines.data.mot import MotWriter, SeqInfo, write_mot, write_seqinfo
from detstream.engines.data.synthetic.config import SceneConfig, parse_size
from detstream.engines.data.synthetic.scene import SyntheticScene
from detstream.engines.errors import UserInputError
from detstream.engines.metrics.mot import MotScores, evaluate_mot
from detstream.engines.predict import Predictor
from detstream.engines.runtime.select import open_backend
from detstream.engines.spec import Detections
from detstream.stream.bench.common import quiet
from detstream.stream.bench.scene_kinds import DEFAULT_KINDS, SCENE_KINDS
from detstream.stream.sinks.truth import MIN_VISIBILITY
from detstream.stream.track import make_tracker
from detstream.stream.track.interpolate import interpolate_tracks

Detector = Callable[[np.ndarray], Detections]

#: Tracker variants compared: name → (tracker, option overrides).
VARIANTS: dict[str, tuple[str, dict]] = {
    "bytetrack": ("bytetrack", {}),
    "botsort-no-cmc": ("botsort", {"camera_motion": False}),
    "botsort": ("botsort", {}),
}
#: Variants also scored with offline gap filling (as ``NAME+interpolate``, from the same run).
INTERPOLATED = ("botsort",)
#: The scene groups always scored, in the order of the table (then one group per kind).
GROUPS = ("all", "static", "moving")


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
                  first_seed: int = 1000, kinds: tuple[str, ...] = DEFAULT_KINDS
                  ) -> list[SceneConfig]:
    """Held-out scenes: ten objects in view on average (so paths cross), occluders, and the
    ``kinds`` in turn (:data:`SCENE_KINDS`; by default a static camera, then camera pan and
    jitter). Object sizes are those of ``detstream run``'s default scene (a quarter of the
    frame height over 720 px is 48 px at the smallest)."""
    unknown = [k for k in kinds if k not in SCENE_KINDS]
    if unknown or not kinds:
        raise UserInputError(f"scene kind {unknown[0] if unknown else '(none)'!r}: choose from "
                             f"{', '.join(SCENE_KINDS)}")
    w, h = size
    base = {"width": w, "height": h, "fps": fps, "frames": frames, "objects": 10,
            "min_size": 48 * h / 720, "max_size_frac": 0.35}
    return [SceneConfig(**{**base, **SCENE_KINDS[kinds[i % len(kinds)]]}, seed=first_seed + i)
            for i in range(scenes)]


def scene_kind(config: SceneConfig) -> str:
    """Which of :data:`SCENE_KINDS` ``config`` is (``static`` when none matches)."""
    for kind, changes in reversed(SCENE_KINDS.items()):  # the most specific first
        if changes and all(getattr(config, k) == v for k, v in changes.items()):
            return kind
    return "static"


def scene_name(config: SceneConfig) -> str:
    """``synth-SEED``, then ``-KIND`` for every kind but ``static`` (``synth-1001-moving``)."""
    kind = scene_kind(config)
    return f"synth-{config.seed}" + ("" if kind == "static" else f"-{kind}")


def model_detector(model: str, backend: str = "auto", conf: float = 0.1) -> Detector:
    """Frame (BGR) → the model's detections at score threshold ``conf``."""
    predictor = Predictor(open_backend(model, backend), conf=conf)

    def detect(frame: np.ndarray) -> Detections:
        return predictor([frame])[0]

    return detect


def scene_truth_file(config: SceneConfig, gt_root: Path) -> Path:
    """Make the scene's MOTChallenge folder ``gt_root/NAME`` (with ``seqinfo.ini``); the
    path of the ``gt/gt.txt`` its truth is to be written to."""
    name = scene_name(config)
    (gt_root / name / "gt").mkdir(parents=True)
    write_seqinfo(gt_root / name / "seqinfo.ini", SeqInfo(name, config.fps, config.frames,
                                                         config.width, config.height))
    return gt_root / name / "gt" / "gt.txt"


def detection_streams(detector: Detector | None) -> list[str]:
    """The detection streams scored: degraded truth, and the model's when there is one."""
    return ["noisy-truth"] + (["model"] if detector is not None else [])


def degradation_rng(config: SceneConfig) -> np.random.Generator:
    """The random numbers of one scene's ``noisy-truth`` degradation: every job that
    degrades a scene (``bench mot``, ``bench tune``) sees the same detections."""
    return np.random.default_rng([config.seed, 0x7AC])


def track_scene(config: SceneConfig, detector: Detector | None, root: Path,
                variants: dict[str, tuple[str, dict]] = VARIANTS,
                interpolated: tuple[str, ...] = INTERPOLATED,
                how: Degradation = Degradation()) -> None:
    """Render one scene and track its detection streams with every variant.

    Writes the scene's truth to ``root/gt/NAME`` (``gt/gt.txt`` and ``seqinfo.ini``) and each
    stream's and variant's tracks to ``root/pred/STREAM/VARIANT/NAME.txt`` (interpolated
    variants also as ``VARIANT+interpolate``).
    """
    name = scene_name(config)
    streams = detection_streams(detector)
    gt_file = scene_truth_file(config, root / "gt")
    trackers = {(s, v): make_tracker(t, config.fps, dict(opts))
                for s in streams for v, (t, opts) in variants.items()}
    tracks: dict[tuple[str, str], dict[int, Detections]] = {k: {} for k in trackers}
    rng = degradation_rng(config)
    with MotWriter(gt_file, ground_truth=True) as gt:
        for index, (frame, truth) in enumerate(SyntheticScene(config)):
            gt.write(index + 1, truth)
            found = {"noisy-truth": degrade(truth, rng, (config.width, config.height), how)}
            if detector is not None:
                found["model"] = detector(frame)
            for (s, v), tracker in trackers.items():
                tracks[s, v][index + 1] = tracker.update(found[s], frame)
    for (s, v), frames in list(tracks.items()):
        if v in interpolated:
            tracks[s, f"{v}+interpolate"] = interpolate_tracks(frames, config.fps)[0]
    for (s, v), frames in tracks.items():
        path = root / "pred" / s / v / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mot(path, frames.items())


def group_scenes(root: Path, names: list[str]) -> dict[str, list[str]]:
    """The scenes of each group: ``all``; ``static`` and ``moving`` (the camera); and, when
    other kinds are there, one group per kind. TrackEval scores a folder: each group's truth
    is copied to ``root/gt-GROUP``."""
    moving = ("-moving", "-fast-pan", "-shaky")
    groups = {"all": names, "static": [n for n in names if not n.endswith(moving)],
              "moving": [n for n in names if n.endswith(moving)]}
    kinds = {n: next((k for k in SCENE_KINDS if n.endswith(f"-{k}")), "static") for n in names}
    if set(kinds.values()) - {"static", "moving"}:
        for kind in SCENE_KINDS:
            if kind not in groups and kind in kinds.values():
                groups[kind] = [n for n in names if kinds[n] == kind]
    for group, members in groups.items():
        if group != "all":
            for n in members:
                shutil.copytree(root / "gt" / n, root / f"gt-{group}" / n)
    return groups


def score_tracks(root: Path, groups: dict[str, list[str]], stream: str, variant: str) -> dict:
    """TrackEval's scores of one stream's and variant's tracks: ``{group: scores, ...}`` for
    each group with scenes, plus ``{scene: scores}`` for every scene."""
    entry = {}
    for group, members in groups.items():
        if not members:
            continue
        gt_root = root / ("gt" if group == "all" else f"gt-{group}")
        combined, per_seq = evaluate_mot(gt_root, root / "pred" / stream / variant)
        entry[group] = combined.to_dict()
        if group == "all":
            entry.update({k: m.to_dict() for k, m in per_seq.items()})
    return entry


def bench_tracking(configs: list[SceneConfig], detector: Detector | None,
                   variants: dict[str, tuple[str, dict]] = VARIANTS,
                   interpolated: tuple[str, ...] = INTERPOLATED,
                   how: Degradation = Degradation(),
                   progress: Callable[[str], None] = quiet) -> dict:
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
    streams = detection_streams(detector)
    scored = [*variants, *(f"{v}+interpolate" for v in interpolated if v in variants)]
    names = [scene_name(c) for c in configs]
    with tempfile.TemporaryDirectory(prefix="detstream-mot-bench-") as tmp:
        root = Path(tmp)
        for config, name in zip(configs, names, strict=True):
            track_scene(config, detector, root, variants, interpolated, how)
            progress(f"scene {name}: {config.frames} frames tracked")
        groups = group_scenes(root, names)
        results = {s: {v: score_tracks(root, groups, s, v) for v in scored} for s in streams}
    return {"scenes": names, "results": results}


def bench_mot(model: str = "default", backend: str = "auto", conf: float = 0.1,
              scenes: int = 6, frames: int = 300, size: str = "640x360", fps: float = 30.0,
              progress: Callable[[str], None] = quiet,
              kinds: tuple[str, ...] = DEFAULT_KINDS) -> dict:
    """``detstream bench mot``: :func:`bench_tracking` on :func:`scene_configs` scenes of
    ``size`` (``WxH``), with the ``model`` stream from ``model`` (``none``: no model stream).

    Returns:
        :func:`bench_tracking`'s figures and the settings (``model``, ``conf``, ``size``,
        ``fps``, ``frames``).
    """
    detector = model_detector(model, backend, conf) if model != "none" else None
    configs = scene_configs(scenes, frames, parse_size(size), fps, kinds=kinds)
    report = bench_tracking(configs, detector, progress=progress)
    report.update(model=model, conf=conf, size=size, fps=fps, frames=frames, kinds=list(kinds))
    return report


def summary_rows(report: dict) -> list[tuple[str, str, str, MotScores]]:
    """``(stream, variant, group, scores)`` rows for all scenes, the static ones and the
    moving-camera ones: the table printed by ``detstream bench mot``."""
    groups = [*GROUPS, *(k for k in SCENE_KINDS if k not in GROUPS)]
    return [(stream, variant, group, MotScores(**by_group[group]))
            for stream, by_variant in report["results"].items()
            for variant, by_group in by_variant.items()
            for group in groups if group in by_group]


def print_mot(report: dict) -> None:
    """The table ``detstream bench mot`` prints: a row per stream, variant and group."""
    print(f"{'detections':<12}{'tracker':<21}{'scenes':<8}{'HOTA':>7}{'MOTA':>7}{'IDF1':>7}"
          f"{'IDSW':>6}{'FP':>7}{'FN':>7}")
    for stream, variant, group, s in summary_rows(report):
        print(f"{stream:<12}{variant:<21}{group:<8}{s.HOTA:>7.3f}{s.MOTA:>7.3f}{s.IDF1:>7.3f}"
              f"{s.IDSW:>6}{s.FP:>7}{s.FN:>7}")
