"""The motion gate replayed offline on a synthetic scene, to choose its defaults by measurement.

Two measurements, neither needing a model:

- :func:`replay_gate`: the gate alone. The detector is a stand-in that takes
  ``detector_frames`` frames per call and finds every target visible on its frame; the tracker
  a stand-in that follows every target found since, perfectly, reporting its box ``lag``
  frames late. Reported: the detector calls the gate lets through against always-on (the
  detector's CPU time per camera), why, and how long each target waited for its first
  detection after it came into view.
- :func:`track_gated`: the gate in front of a real tracker (BoT-SORT by default) fed with
  degraded truth (``bench mot``'s ``noisy-truth``, the same detections for both runs): HOTA
  with the gate against the detector on every frame. The tracker's own boxes of the previous
  frame are the gate's ``tracked_boxes``.

:data:`QUIET_SCENE` is the benchmark scene: a static camera watching waves of objects with long
empty spells between them (``quiet``), lighting steps and sensor noise throughout.

Measured with the defaults (640x480, 5400 frames, seed 0; CPU of this 2-core machine):

====================  ==============  ===========  ===================  =====================
scene                 frames busy     gate alone   BoT-SORT, degraded   HOTA always / gated
====================  ==============  ===========  ===================  =====================
``quiet=60`` (this)   23.1 %          23.7 %       23.6 %               0.7741 / 0.7729
``quiet=30``          32.7 %          33.2 %       33.0 %               0.7954 / 0.7919
====================  ==============  ===========  ===================  =====================

(detector calls as a share of always-on's). Every target was detected within 0.17 s of
coming into view; the detector ran on 35 of the 4152 empty frames (27 of them the time
limit). The gate's share is the busy share plus about 1 %: moving tracks are detected on every
free frame (see :mod:`~detstream.stream.pipeline.motion_gate`), so the savings on a static
camera are its empty (or still) stretches. ``python -m detstream.stream.bench.gate`` prints
these figures.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from detstream.engines.data.synthetic.config import SceneConfig, parse_synthetic_uri
from detstream.engines.data.synthetic.scene import SyntheticScene
from detstream.engines.spec import Detections
from detstream.stream.pipeline.motion_gate import GateConfig, MotionGate
from detstream.stream.sinks.truth import MIN_VISIBILITY

#: A static camera, 640x480 at 30 fps, for 3 minutes: waves of objects arriving for 10 s, then
#: leaving, with a minute of empty view between (a target in view on 1248 of the 5400 frames;
#: lighting drifts and steps, sensor noise throughout). ``quiet=30`` makes it busy a third
#: of the time (1767 frames).
QUIET_SCENE = "synthetic://?seed=0&size=640x480&fps=30&camera_motion=0&quiet=60&frames=5400"


@dataclass(frozen=True)
class GateReplay:
    """What :func:`replay_gate` measured.

    Attributes:
        frames: frames replayed.
        always_on: detector calls with the gate off (every frame the detector is free on).
        gated: detector calls with the gate.
        ratio: ``gated / always_on``: the detector's CPU time per camera against always-on.
        why: the gate's answers by reason (``quiet`` counts frames it skipped).
        empty_frames: frames with no target in view; ``empty_detections`` the calls on them.
        targets: targets that came into view (visibility >= 0.3).
        missed: targets never detected while in view.
        delay_mean_s, delay_p95_s, delay_max_s: seconds from a target's first visible frame
            to its first detection (always-on: up to ``detector_frames - 1`` frames).
        decide_ms_mean, decide_ms_p95: CPU time of ``MotionGate.decide`` per call.
    """

    frames: int
    always_on: int
    gated: int
    ratio: float
    why: dict
    empty_frames: int
    empty_detections: int
    targets: int
    missed: int
    delay_mean_s: float
    delay_p95_s: float
    delay_max_s: float
    decide_ms_mean: float
    decide_ms_p95: float

    def to_dict(self) -> dict:
        return asdict(self)


def scene_config(scene: str | SceneConfig) -> SceneConfig:
    """A scene given as a ``synthetic://`` URI or a config; an endless one is refused."""
    config = parse_synthetic_uri(scene)[0] if isinstance(scene, str) else scene
    if config.frames is None:
        raise ValueError("the scene must have a number of frames (frames=N)")
    return config


def _visible(truth: Detections) -> Detections:
    return truth[truth.data["visibility"] >= MIN_VISIBILITY]


def replay_gate(scene: str | SceneConfig = QUIET_SCENE, config: GateConfig | None = None,
                detector_frames: int = 1, lag: int = 1) -> GateReplay:
    """Replay ``scene`` through a :class:`MotionGate` with stand-in detector and tracker.

    Args:
        scene: a ``synthetic://`` URI or a :class:`SceneConfig` with a number of frames.
        config: the gate's thresholds (its defaults when ``None``).
        detector_frames: frames one detector call takes (1: it keeps up with the camera; 3: a
            10 fps detector on a 30 fps camera); the gate is asked only when it is free.
        lag: frames by which the tracked boxes handed to the gate are late.
    """
    cfg = scene_config(scene)
    # Timed as a pipeline runs it: OpenCV on the calling thread only (single_threaded_opencv).
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        replay = _replay(cfg, MotionGate(config, cfg.fps), detector_frames, lag)
    finally:
        cv2.setNumThreads(threads)
    return replay


def _replay(cfg: SceneConfig, gate: MotionGate, detector_frames: int, lag: int) -> GateReplay:
    known: set[int] = set()  # targets the stand-in tracker follows
    first_seen: dict[int, int] = {}
    first_found: dict[int, int] = {}
    history: deque[Detections] = deque(maxlen=lag + 1)
    free_from = 0
    always_on = gated = empty = empty_detections = 0
    decide_ms: list[float] = []
    for index, (image, truth) in enumerate(SyntheticScene(cfg)):
        visible = _visible(truth)
        for uid in visible.track_ids.tolist():
            first_seen.setdefault(uid, index)
        if not len(visible):
            empty += 1
        history.append(truth)
        if index % detector_frames == 0:
            always_on += 1
        if index < free_from:
            continue
        late = history[0]
        boxes = late.boxes[np.isin(late.track_ids, list(known))]
        start = time.process_time()
        decision = gate.decide(image, boxes, index / cfg.fps)
        decide_ms.append(1e3 * (time.process_time() - start))
        if not decision.detect:
            continue
        gated += 1
        empty_detections += not len(visible)
        free_from = index + detector_frames
        for uid in visible.track_ids.tolist():
            known.add(uid)
            first_found.setdefault(uid, index)
    delays = [(first_found[uid] - seen) / cfg.fps for uid, seen in first_seen.items()
              if uid in first_found]
    why = gate.stats["why"]
    return GateReplay(
        frames=cfg.frames, always_on=always_on, gated=gated, ratio=gated / max(always_on, 1),
        why=dict(why), empty_frames=empty, empty_detections=empty_detections,
        targets=len(first_seen), missed=len(first_seen) - len(first_found),
        delay_mean_s=statistics.fmean(delays) if delays else 0.0,
        delay_p95_s=float(np.percentile(delays, 95)) if delays else 0.0,
        delay_max_s=max(delays, default=0.0),
        decide_ms_mean=statistics.fmean(decide_ms),
        decide_ms_p95=float(np.percentile(decide_ms, 95)))


def track_gated(scene: str | SceneConfig = QUIET_SCENE, config: GateConfig | None = None,
                tracker: str = "botsort") -> dict:
    """HOTA of ``tracker`` on degraded truth with the gate in front of the stand-in detector,
    against the detector on every frame (the same detections on the frames both detect on).

    Returns:
        ``{"always_on": scores, "gated": scores, "hota_change": gated - always-on HOTA,
        "ratio": detector calls gated / always-on, "why": the gate's reasons}``, scores being
        TrackEval's (HOTA, MOTA, IDF1, ...) as dicts.
    """
    # Imported here: the tracking scores pull in TrackEval and the MOT benchmark's helpers.
    from detstream.engines.data.mot import MotWriter, write_mot
    from detstream.engines.metrics.mot import evaluate_mot
    from detstream.stream.bench.mot import (
        degradation_rng,
        degrade,
        scene_name,
        scene_truth_file,
    )
    from detstream.stream.track import make_tracker

    cfg = scene_config(scene)
    gate = MotionGate(config, cfg.fps)
    plain, gated = make_tracker(tracker, cfg.fps), make_tracker(tracker, cfg.fps)
    rng = degradation_rng(cfg)
    size = (cfg.width, cfg.height)
    out: dict[str, dict[int, Detections]] = {"always_on": {}, "gated": {}}
    tracks = Detections.empty(SceneConfig().class_names)
    with tempfile.TemporaryDirectory(prefix="detstream-gate-") as tmp:
        root = Path(tmp)
        with MotWriter(scene_truth_file(cfg, root / "gt"), ground_truth=True) as gt:
            for index, (image, truth) in enumerate(SyntheticScene(cfg)):
                gt.write(index + 1, truth)
                found = degrade(truth, rng, size)
                out["always_on"][index + 1] = plain.update(found, image)
                if gate.decide(image, tracks.boxes, index / cfg.fps).detect:
                    tracks = gated.update(found, image)
                else:
                    tracks = gated.carry(None, image)
                out["gated"][index + 1] = tracks
        scores = {}
        for run, frames in out.items():
            path = root / "pred" / run / f"{scene_name(cfg)}.txt"
            path.parent.mkdir(parents=True)
            write_mot(path, frames.items())
            scores[run] = evaluate_mot(root / "gt", path.parent)[0].to_dict()
    stats = gate.stats
    return {"always_on": scores["always_on"], "gated": scores["gated"],
            "hota_change": scores["gated"]["HOTA"] - scores["always_on"]["HOTA"],
            "ratio": stats["detections_run"] / cfg.frames, "why": stats["why"]}


def sweep(scene: str | SceneConfig = QUIET_SCENE, detector_frames: int = 1,
          **candidates: list) -> list[tuple[dict, GateReplay]]:
    """:func:`replay_gate` for each value of each field given (one at a time, the others at
    their defaults): ``sweep(threshold=[12, 18, 25], min_area=[0.0005, 0.001])``."""
    results = [({}, replay_gate(scene, GateConfig(), detector_frames))]
    for name, values in candidates.items():
        for value in values:
            results.append(({name: value},
                            replay_gate(scene, GateConfig(**{name: value}), detector_frames)))
    return results


def why_line(why: dict) -> str:
    """``quiet 4000, motion 120, ...``: the reasons, most frequent first."""
    counts = Counter(why)
    return ", ".join(f"{k} {counts[k]}" for k in sorted(counts, key=lambda k: -counts[k]))


def main(argv: list[str] | None = None) -> None:
    """``python -m detstream.stream.bench.gate [--scene URI] [--detector-frames K]
    [--hota] [--set FIELD=VALUE ...]``: the replay's figures, and with ``--hota`` the
    tracking scores (slower: two trackers and TrackEval)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m detstream.stream.bench.gate",
                                     description=main.__doc__)
    parser.add_argument("--scene", default=QUIET_SCENE, help="a synthetic:// URI with frames=N")
    parser.add_argument("--detector-frames", type=int, default=1,
                        help="frames one detector call takes (default 1)")
    parser.add_argument("--hota", action="store_true", help="also track and score")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a GateConfig field (repeatable), e.g. --set threshold=12")
    args = parser.parse_args(argv)
    fields = {f: type(v) for f, v in asdict(GateConfig()).items()}
    changes = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in fields:
            parser.error(f"GateConfig has no field {name!r}; it has {', '.join(fields)}")
        changes[name] = fields[name](value)
    config = GateConfig(**changes)
    replay = replay_gate(args.scene, config, args.detector_frames)
    print(f"scene {args.scene}")
    print(f"detector calls {replay.gated} of {replay.always_on} always-on "
          f"({100 * replay.ratio:.1f} %); frames with nothing in view "
          f"{replay.empty_frames} of {replay.frames}, detected on {replay.empty_detections}")
    print(f"why: {why_line(replay.why)}")
    print(f"targets {replay.targets}, never detected {replay.missed}; first detection after "
          f"{replay.delay_mean_s:.3f} s on average, {replay.delay_p95_s:.3f} s p95, "
          f"{replay.delay_max_s:.3f} s at most")
    print(f"decide: {replay.decide_ms_mean:.2f} ms CPU a call on average, "
          f"{replay.decide_ms_p95:.2f} ms p95")
    if args.hota:
        scores = track_gated(args.scene, config)
        print(f"BoT-SORT on degraded truth: HOTA {scores['always_on']['HOTA']:.4f} always-on, "
              f"{scores['gated']['HOTA']:.4f} gated ({scores['hota_change']:+.4f}) with the "
              f"detector on {100 * scores['ratio']:.1f} % of the frames")


if __name__ == "__main__":
    main()
