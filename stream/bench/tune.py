"""``detstream bench tune``: tracker defaults chosen on many sequences, checked by leave-one-out.

A default tuned on one sequence fits that sequence. Here every candidate value of a tracker
parameter is scored on every sequence: the held-out synthetic scenes of ``bench mot`` (each on
two detection streams, the model's and degraded truth) and, where it is on disk, TUD-Campus's
public detections. The value with the best mean HOTA over all sequences is the choice; the
leave-one-out figure says how well choosing that way generalises: for each sequence, the value
best on all the *other* sequences is taken, and its score on the one left out is averaged.

The expensive parts are done once per sequence: rendering, the detector, and the camera-motion
and scene-cut estimates (they depend on the frames and the detections, not on the tracker's
settings), so each setting costs only the trackers and TrackEval.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detstream.engines.data.mot import MotWriter, read_mot, read_seqinfo, write_mot
from detstream.engines.data.synthetic.config import SceneConfig
from detstream.engines.data.synthetic.scene import SyntheticScene
from detstream.engines.errors import UserInputError
from detstream.engines.metrics.mot import MotScores, evaluate_mot
from detstream.engines.spec import Detections
from detstream.stream.bench.common import quiet
from detstream.stream.bench.mot import (
    Degradation,
    Detector,
    degradation_rng,
    degrade,
    detection_streams,
    scene_name,
    scene_truth_file,
)
from detstream.stream.commands.track import track_detections
from detstream.stream.track import make_tracker
from detstream.stream.track.bytetrack import ByteTrackConfig
from detstream.stream.track.motion import CameraMotion, small_view
from detstream.stream.track.scenecut import SceneCutDetector

#: A stand-in frame: with it the tracker asks its (replayed) motion and cut estimates.
_NO_FRAME = np.zeros((1, 1, 3), np.uint8)


@dataclass
class TrackedSequence:
    """One sequence to track: detections per frame and what the frames told once.

    Attributes:
        name: ``STREAM/SCENE`` (or ``tud/TUD-Campus``), unique.
        stream: ``model``, ``noisy-truth`` or ``public`` (MOTChallenge detections).
        fps: frame rate.
        detections: per frame (1-based, every frame present).
        affines: per frame the camera motion in frame pixels, or ``None`` (no frames).
        cuts: per frame whether a scene cut starts there, or ``None``.
        gt_root: the MOTChallenge folder holding this sequence's truth as ``SCENE``.
        size: the frames' ``(width, height)``, or None where unknown.
    """

    name: str
    stream: str
    fps: float
    detections: list[Detections]
    affines: list[np.ndarray] | None
    cuts: list[bool] | None
    gt_root: Path
    scene: str = field(default="")
    size: tuple[int, int] | None = None


class _Replayed:
    """Camera motion and scene cuts measured once, given back frame by frame."""

    def __init__(self, affines: list[np.ndarray] | None, cuts: list[bool] | None) -> None:
        self.affines, self.cuts, self.k, self.c = affines, cuts, 0, 0

    def reset(self) -> None:
        pass

    def estimate(self, frame: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
        affine = self.affines[self.k]
        self.k += 1
        return affine.copy()

    def is_cut(self, frame: np.ndarray) -> bool:
        cut = self.cuts[self.c]
        self.c += 1
        return cut


def measure_scene(config: SceneConfig, detector: Detector | None, gt_root: Path,
                  how: Degradation | None = None) -> list[TrackedSequence]:
    """Render one scene once: its truth (written under ``gt_root``) and, per detection
    stream, the detections with the camera motion and cuts botsort would estimate."""
    how = how or Degradation()
    name = scene_name(config)
    streams = detection_streams(detector)
    found: dict[str, list[Detections]] = {s: [] for s in streams}
    affines: dict[str, list[np.ndarray]] = {s: [] for s in streams}
    motion = {s: CameraMotion() for s in streams}
    cuts, cutter = [], SceneCutDetector()
    rng = degradation_rng(config)  # the same degraded truth as bench mot
    with MotWriter(scene_truth_file(config, gt_root), ground_truth=True) as gt:
        for index, (frame, truth) in enumerate(SyntheticScene(config), start=1):
            gt.write(index, truth)
            view, scale = small_view(frame)
            cuts.append(cutter.is_cut(view))
            if cuts[-1]:  # the tracker forgets the previous frame's motion at a cut
                for estimator in motion.values():
                    estimator.reset()
            dets = {"noisy-truth": degrade(truth, rng, (config.width, config.height), how)}
            if detector is not None:
                dets["model"] = detector(frame)
            for s in streams:
                found[s].append(dets[s])
                affine = motion[s].estimate(view, dets[s].boxes.astype(np.float64) * scale)
                affine[:, 2] /= scale  # frame pixels (the tracker sees a 1-pixel stand-in)
                affines[s].append(affine)
    return [TrackedSequence(f"{s}/{name}", s, config.fps, found[s], affines[s], cuts, gt_root, name,
                            (config.width, config.height)) for s in streams]


def public_sequence(folder: Path, fps: float | None, gt_root: Path,
                    size: tuple[int, int] | None = None) -> TrackedSequence:
    """A MOTChallenge sequence with public detections (``det.txt``, ``gt.txt``), no frames.

    Its frame rate is ``fps`` when given, else its ``seqinfo.ini``'s; its frame ``size`` as
    given, else from ``seqinfo.ini``, else unknown. The truth (and ``seqinfo.ini``, whose
    length TrackEval then uses) is copied to ``gt_root/NAME``; the detections are read once.
    """
    name = folder.name
    info = read_seqinfo(folder / "seqinfo.ini") if (folder / "seqinfo.ini").is_file() else None
    if fps is None:
        if info is None or not info.frame_rate > 0:
            raise UserInputError(f"{folder}: no frame rate (no frameRate in a seqinfo.ini); "
                                 "give it as DIR:FPS")
        fps = float(info.frame_rate)
    if size is None and info is not None and info.width > 0 and info.height > 0:
        size = (info.width, info.height)
    (gt_root / name / "gt").mkdir(parents=True)
    shutil.copyfile(folder / "gt.txt", gt_root / name / "gt" / "gt.txt")
    if info is not None:
        shutil.copyfile(folder / "seqinfo.ini", gt_root / name / "seqinfo.ini")
    detections = read_mot(folder / "det.txt", empty_ok=False)
    last = max(detections)
    frames = [detections.get(f, Detections.empty()) for f in range(1, last + 1)]
    return TrackedSequence(f"public/{name}", "public", fps, frames, None, None, gt_root, name,
                           size)


def track_sequence(sequence: TrackedSequence, options: dict, out: Path) -> None:
    """Track ``sequence`` with botsort and ``options``; write its MOT results to ``out``."""
    tracker = make_tracker("botsort", sequence.fps, options, frame_size=sequence.size)
    if sequence.affines is not None:
        tracker.motion = _Replayed(sequence.affines, None)
        tracker.cuts = _Replayed(None, sequence.cuts)
        rows = ((k, tracker.update(dets, _NO_FRAME))
                for k, dets in enumerate(sequence.detections, 1))
    else:  # no frames: as ``detstream track --no-interpolate`` tracks
        rows = track_detections(tracker, dict(enumerate(sequence.detections, 1))).items()
    write_mot(out, rows)


def score_setting(sequences: Sequence[TrackedSequence], options: dict, root: Path
                  ) -> dict[str, MotScores]:
    """Every sequence's TrackEval scores with tracker ``options``."""
    scores: dict[str, MotScores] = {}
    by_stream: dict[tuple[str, Path], list[TrackedSequence]] = {}
    for sequence in sequences:
        by_stream.setdefault((sequence.stream, sequence.gt_root), []).append(sequence)
    for (stream, gt_root), members in by_stream.items():
        pred = root / "pred" / stream
        shutil.rmtree(pred, ignore_errors=True)  # the previous setting's tracks
        pred.mkdir(parents=True)
        for sequence in members:
            track_sequence(sequence, options, pred / f"{sequence.scene}.txt")
        _, per_sequence = evaluate_mot(gt_root, pred)
        for sequence in members:
            scores[sequence.name] = per_sequence[sequence.scene]
    return scores


def leave_one_out(table: dict[object, dict[str, float]]) -> tuple[float, dict[str, object]]:
    """Mean score on each sequence of the value chosen on all the others.

    Args:
        table: ``{value: {sequence: score}}``, every value scored on the same sequences.

    Returns:
        ``(mean, picks)``: the mean left-out score, and per sequence the value picked
        without it.
    """
    values = list(table)
    names = list(next(iter(table.values())))
    total = {v: sum(table[v].values()) for v in values}
    picks, held = {}, []
    for name in names:
        best = max(values, key=lambda v: (total[v] - table[v][name], -values.index(v)))
        picks[name] = best
        held.append(table[best][name])
    return float(np.mean(held)), picks


def parse_candidates(text: str, flag: str = "--param") -> tuple[str, list]:
    """``NAME=v1,v2,...`` → the parameter and its typed candidate values (errors name
    ``flag``)."""
    name, _, values = text.partition("=")
    name = name.strip()
    defaults = ByteTrackConfig().to_dict()
    if name not in defaults or not values.strip():
        raise UserInputError(f"{flag} {text!r}: write NAME=v1,v2,... with NAME one of "
                             f"{', '.join(sorted(defaults))}")
    kind = type(defaults[name])
    typed = []
    for value in values.split(","):
        value = value.strip()
        try:
            typed.append(value if kind is str else
                         value.lower() in ("1", "true", "yes") if kind is bool else kind(value))
        except ValueError:
            raise UserInputError(f"{flag} {name}: {value!r} is not a {kind.__name__}") from None
    ByteTrackConfig(**{name: typed[0]})  # the tracker's own range checks, with its message
    return name, typed


def bench_tune(configs: list[SceneConfig], detector: Detector | None,
               params: list[tuple[str, list]],
               public: Sequence[tuple[Path, float | None, tuple[int, int] | None]] = (),
               progress: Callable[[str], None] = quiet) -> dict:
    """Score each candidate of each parameter (the others at their defaults) on every
    sequence; the choice by mean HOTA, and its leave-one-out check. ``public`` sequences are
    ``(folder, fps or None (its seqinfo.ini's), frame size or None)``.

    Returns:
        ``{"sequences": [...], "defaults": {...}, "params": {NAME: {"values": [...],
        "mean": {value: {HOTA, IDF1, MOTA, IDSW}}, "chosen": value, "default": value,
        "leave_one_out_HOTA": float, "default_HOTA": float, "picks": {...},
        "per_sequence_HOTA": {value: {sequence: HOTA}}}}}``.
    """
    defaults = ByteTrackConfig().to_dict()
    with tempfile.TemporaryDirectory(prefix="detstream-tune-") as tmp:
        root = Path(tmp)
        sequences: list[TrackedSequence] = []
        for config in configs:
            sequences += measure_scene(config, detector, root / "gt")
            progress(f"scene {scene_name(config)}: measured")
        for folder, fps, size in public:
            sequences.append(public_sequence(folder, fps, root / "gt-public", size))
        report: dict = {"sequences": [s.name for s in sequences],
                        "defaults": {name: defaults[name] for name, _ in params}, "params": {}}
        cache: dict[tuple, dict[str, MotScores]] = {}
        for name, values in params:
            table: dict[object, dict[str, MotScores]] = {}
            for value in values:
                key = (name, value) if value != defaults[name] else ("default",)
                if key not in cache:
                    cache[key] = score_setting(sequences, {name: value}, root)
                table[value] = cache[key]
                mean = {m: float(np.mean([getattr(s, m) for s in table[value].values()]))
                        for m in ("HOTA", "IDF1", "MOTA")}
                progress(f"{name}={value}: mean HOTA {mean['HOTA']:.4f}, IDF1 "
                         f"{mean['IDF1']:.4f}, MOTA {mean['MOTA']:.4f}")
            hota = {v: {n: s.HOTA for n, s in table[v].items()} for v in values}
            loo, picks = leave_one_out(hota)
            means = {str(v): {"HOTA": float(np.mean(list(hota[v].values()))),
                              "IDF1": float(np.mean([s.IDF1 for s in table[v].values()])),
                              "MOTA": float(np.mean([s.MOTA for s in table[v].values()])),
                              "IDSW": int(sum(s.IDSW for s in table[v].values()))}
                     for v in values}
            chosen = max(values, key=lambda v: means[str(v)]["HOTA"])
            default_hota = (means[str(defaults[name])]["HOTA"] if defaults[name] in values
                            else None)
            report["params"][name] = {
                "values": values, "mean": means, "chosen": chosen, "default": defaults[name],
                "leave_one_out_HOTA": loo, "default_HOTA": default_hota,
                "picks": {n: p for n, p in picks.items()},
                "per_sequence_HOTA": {str(v): hota[v] for v in values}}
    return report


def print_tune(report: dict) -> None:
    """The table ``detstream bench tune`` prints."""
    print(f"{len(report['sequences'])} sequences; each parameter varied alone, the others at "
          "their defaults")
    print(f"{'parameter':<18}{'value':>10}{'HOTA':>8}{'IDF1':>8}{'MOTA':>8}{'IDSW':>7}")
    for name, entry in report["params"].items():
        for value in entry["values"]:
            m = entry["mean"][str(value)]
            marks = ("  default" if value == entry["default"] else "") + \
                ("  chosen" if value == entry["chosen"] else "")
            print(f"{name:<18}{value!s:>10}{m['HOTA']:>8.4f}{m['IDF1']:>8.4f}{m['MOTA']:>8.4f}"
                  f"{m['IDSW']:>7}{marks}")
        default = entry["default_HOTA"]
        against = f" (the default alone: {default:.4f})" if default is not None else ""
        print(f"{name:<18}{'leave-one-out HOTA':>26} {entry['leave_one_out_HOTA']:.4f}"
              f"{against}")
