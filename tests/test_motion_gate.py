"""The motion gate (stream/pipeline/motion_gate.py) on rendered synthetic frames, and its
offline replay (stream/bench/gate.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detstream.engines.data.synthetic import Renderer, SceneConfig, SyntheticScene, World
from detstream.engines.spec import Detections
from detstream.stream.bench.gate import replay_gate
from detstream.stream.pipeline.motion_gate import REASONS, GateConfig, MotionGate

FPS = 30.0
NO_BOXES = np.zeros((0, 4))
# A static camera with sensor noise; no lighting changes unless a test asks for them.
STILL = SceneConfig(width=320, height=240, frames=None, seed=3, objects=1, distractors=False,
                    lighting=False, occluders=False)


def rendered(config: SceneConfig, count: int, hide: bool = False
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` frames of ``config`` and their visible targets' boxes (``hide``: rendered
    without any target, so only the sensor noise changes from frame to frame)."""
    world = World(config)
    renderer = Renderer(world)
    frames = []
    for _ in range(count):
        state = world.step()
        targets = {b.uid for b in state.bodies if b.class_id >= 0}
        frame = renderer.render(state, exclude=targets if hide else ())
        frames.append((frame.image, frame.truth.boxes))
    return frames


def answers(gate: MotionGate, frames: list[np.ndarray], start: int = 0,
            boxes: list[np.ndarray] | None = None) -> list[str]:
    """The gate's reasons for consecutive frames (at 30 fps from frame ``start``), with no
    tracks or the given boxes per frame."""
    return [gate.decide(image, boxes[i] if boxes is not None else NO_BOXES,
                        (start + i) / FPS).reason
            for i, image in enumerate(frames)]


def test_quiet_background_then_an_object_appears():
    """A static view with nothing in it is skipped as quiet; an object that appears in it
    (not tracked yet) is motion at once."""
    empty = [image for image, _ in rendered(STILL, 40, hide=True)]
    gate = MotionGate(fps=FPS)
    reasons = answers(gate, empty)
    assert reasons[0] == "first"
    assert reasons[1:] == ["quiet"] * 39
    # The same world 2 s later with its object in view (the view is otherwise unchanged).
    image, boxes = next((image, boxes) for image, boxes in rendered(STILL, 200)[60:]
                        if len(boxes))
    decision = gate.decide(image, NO_BOXES, 40 / FPS)
    assert decision.detect and decision.reason == "motion"
    assert decision.changed >= gate.config.min_area


def test_time_limit_fires_after_max_interval_of_quiet():
    empty = [image for image, _ in rendered(STILL, 95, hide=True)]
    gate = MotionGate(GateConfig(max_interval_seconds=1.0), fps=FPS)
    reasons = answers(gate, empty)
    fired = [i for i, r in enumerate(reasons) if r != "quiet"]
    assert fired == [0, 30, 60, 90]
    assert [reasons[i] for i in fired] == ["first", "time limit", "time limit", "time limit"]


def test_a_lighting_step_is_not_motion():
    """A global brightness step (the whole view 30 % brighter) is normalised away."""
    empty = [image for image, _ in rendered(STILL, 20, hide=True)]
    gate = MotionGate(fps=FPS)
    answers(gate, empty[:10])
    brighter = [np.clip(image.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)
                for image in empty[10:]]
    assert answers(gate, brighter, start=10) == ["quiet"] * 10
    assert gate.stats["camera_moving_frames"] == 0


def moving_object(frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of a scene where one target moves across a static view, and its boxes."""
    config = SceneConfig(width=320, height=240, frames=None, seed=0, objects=1,
                         distractors=False, lighting=False, occluders=False, stops=0.0)
    shots = [(image, boxes) for image, boxes in rendered(config, frames + 30)[30:]
             if len(boxes) == 1]
    assert len(shots) >= frames
    return [image for image, _ in shots[:frames]], [boxes for _, boxes in shots[:frames]]


def test_tracked_motion_alone_only_refreshes_at_its_interval():
    """Motion inside the tracked boxes is no new motion: with moving tracks re-detected every
    0.5 s the detector runs at that interval and never for motion."""
    images, boxes = moving_object(60)
    gate = MotionGate(GateConfig(moving_refresh_seconds=0.5, refresh_seconds=0.5), fps=FPS)
    reasons = answers(gate, images, boxes=boxes)
    fired = [i for i, r in enumerate(reasons) if r != "quiet"]
    assert reasons[0] == "first"
    assert fired == [0, 15, 30, 45]
    assert {reasons[i] for i in fired[1:]} == {"tracks moving"}
    # The same motion untracked is motion.
    gate = MotionGate(GateConfig(moving_refresh_seconds=0.5, refresh_seconds=0.5), fps=FPS)
    assert "motion" in answers(gate, images)


def test_moving_tracks_are_detected_on_every_frame_by_default():
    images, boxes = moving_object(30)
    gate = MotionGate(fps=FPS)
    assert answers(gate, images, boxes=boxes) == ["first"] + ["tracks moving"] * 29


def test_still_tracks_are_refreshed_every_refresh_seconds():
    """A tracked object that stands still costs a detection per ``refresh_seconds`` once it
    has been still for ``track_still_seconds``."""
    images, boxes = moving_object(1)
    frames = [image for image, _ in rendered(STILL, 80, hide=True)]
    # The object pasted still into the noisy empty view.
    x0, y0, x1, y1 = boxes[0][0].astype(int)
    still = []
    for image in frames:
        image = image.copy()
        image[y0:y1, x0:x1] = images[0][y0:y1, x0:x1]
        still.append(image)
    gate = MotionGate(GateConfig(refresh_seconds=1.0, track_still_seconds=0.5), fps=FPS)
    reasons = answers(gate, still, boxes=[boxes[0]] * len(still))
    fired = [(i, r) for i, r in enumerate(reasons) if r != "quiet"]
    # Moving until proven still (0.5 s from the first frame with tracks), then a refresh a
    # second.
    assert fired == [(0, "first"), *((i, "tracks moving") for i in range(1, 16)),
                     (45, "refresh"), (75, "refresh")]


def test_a_panning_camera_turns_the_gate_off():
    config = SceneConfig(width=320, height=240, frames=90, seed=2, camera_motion=True,
                         pan_speed=2.0)
    images = [image for image, _ in SyntheticScene(config)]
    gate = MotionGate(fps=FPS)
    reasons = answers(gate, images)
    assert reasons[0] == "first"
    assert reasons.count("camera moving") >= 80
    assert reasons.count("quiet") == 0
    assert gate.stats["camera_moving_frames"] == reasons.count("camera moving")


def test_the_gate_stays_off_while_the_camera_moves_and_comes_back_when_still():
    """A view panned 2 px a frame for 20 frames, then still: off throughout the pan and for
    ``camera_still_seconds`` after it, then quiet again."""
    wide = SceneConfig(width=480, height=240, frames=None, seed=3, objects=0,
                       distractors=False, lighting=False, occluders=False)
    backgrounds = [image for image, _ in rendered(wide, 80)]
    offsets = [0] * 10 + [2 * k for k in range(1, 21)] + [40] * 50
    images = [np.ascontiguousarray(image[:, x:x + 320])
              for image, x in zip(backgrounds, offsets, strict=True)]
    gate = MotionGate(GateConfig(camera_still_seconds=0.5), fps=FPS)
    reasons = answers(gate, images)
    assert reasons[:10] == ["first"] + ["quiet"] * 9
    moving = [i for i, r in enumerate(reasons) if r == "camera moving"]
    assert moving[0] <= 12  # caught within two frames of the pan's start
    assert moving == list(range(moving[0], moving[-1] + 1))  # off all along
    assert 30 + 15 - 1 <= moving[-1] <= 30 + 15 + 2  # and 0.5 s after the pan
    assert set(reasons[moving[-1] + 1:]) == {"quiet"}


def test_stats_count_every_answer():
    empty = [image for image, _ in rendered(STILL, 70, hide=True)]
    gate = MotionGate(GateConfig(max_interval_seconds=1.0), fps=FPS)
    reasons = answers(gate, empty[:65])
    stats = gate.stats
    assert set(reasons) <= set(REASONS)
    assert stats["detections_run"] == sum(r != "quiet" for r in reasons) == 3
    assert stats["skipped"] == reasons.count("quiet") == 62
    assert stats["why"] == {"first": 1, "time limit": 2, "quiet": 62}
    assert stats["camera_moving_frames"] == 0
    # A detection the gate did not pass counts, and restarts the time limit; one it passed
    # is not counted twice.
    gate.detected(60 / FPS)
    gate.detected(64 / FPS)
    assert gate.stats["detections_run"] == 4 and gate.stats["why"]["forced"] == 1
    assert answers(gate, empty[65:], start=65) == ["quiet"] * 5
    gate.reset()
    assert gate.stats == {"detections_run": 0, "skipped": 0, "why": {},
                          "camera_moving_frames": 0}
    assert gate.decide(empty[0], NO_BOXES, 10.0).reason == "first"


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="min_area"):
        GateConfig(min_area=0.0)
    with pytest.raises(ValueError, match="refresh_seconds"):
        GateConfig(refresh_seconds=0)


def test_decide_is_cheap_on_a_1280x720_frame():
    """The measure on the small view: well under a millisecond a call (timed as the best of
    several rounds, so that a busy machine does not fail it)."""
    import time

    config = SceneConfig(width=1280, height=720, frames=12, seed=1, objects=4)
    images = [image for image, _ in SyntheticScene(config)]
    best = math.inf
    for _ in range(5):
        gate = MotionGate(fps=FPS)
        start = time.process_time()
        answers(gate, images)
        best = min(best, (time.process_time() - start) / len(images))
    assert best < 2e-3, f"{1e3 * best:.2f} ms a call"


# ----------------------------------------------------------------- the replay
def test_replay_on_a_quiet_scene_skips_most_frames_and_misses_nothing():
    replay = replay_gate("synthetic://?seed=1&size=320x240&fps=15&quiet=8&wave=3&frames=300")
    assert replay.always_on == 300
    assert replay.gated == sum(n for r, n in replay.why.items() if r != "quiet")
    busy = 1 - replay.empty_frames / replay.frames
    assert replay.empty_frames > 100
    # The detector runs little beyond the frames with something in view...
    assert replay.ratio <= busy + 0.1
    assert replay.empty_detections <= 0.2 * replay.empty_frames
    # ... and finds every object soon after it comes into view.
    assert replay.targets > 0 and replay.missed == 0
    assert replay.delay_max_s <= 0.5


# ------------------------------------------------------------ in the live pipeline
def test_the_gate_in_a_live_pipeline_rests_through_a_quiet_spell_and_fires_on_arrival():
    """A paced static camera: a wave of objects, over four seconds with nothing in view
    (frames 168-300), then the next wave. With --motion-gate the free detector rests through
    the empty spell (the 5 s time limit aside) and runs again within a few frames of the
    first arrival (without the gate it runs on every frame it can: the other tests)."""
    from detstream.engines.predict import Predictor
    from detstream.engines.runtime.replay import RecordingBackend, ReplayBackend
    from detstream.engines.runtime.select import open_backend
    from detstream.stream.pipeline.runner import Pipeline, PipelineOptions
    from detstream.stream.sources import open_source
    from detstream.stream.track import make_tracker

    scene = "synthetic://?seed=0&size=320x192&fps=30&camera_motion=0&quiet=4&wave=1&frames=320"
    recording = RecordingBackend(open_backend("default", "onnxruntime", imgsz=160, threads=1))
    present = {}
    Pipeline(open_source(scene), Predictor(recording), None, None, [],
             PipelineOptions(detect_every=1),
             on_packet=lambda p: present.__setitem__(p.index, len(p.truth) > 0)).run()
    empty = [i for i in range(len(present)) if not present[i] and i > 0 and present[i - 1]]
    arrival = next(i for i in range(empty[0], len(present)) if present[i])
    assert arrival - empty[0] > 90  # a quiet spell of over three seconds

    def detected_frames(gate: GateConfig) -> tuple[list[int], dict]:
        frames: list[int] = []

        def seen(packet) -> None:
            frames.extend(index for index, _ in packet.found_late)
            if packet.found is not None:
                frames.append(packet.index)

        report = Pipeline(open_source(scene + "&live=1"),
                          Predictor(ReplayBackend(recording, infer_ms=10.0)),
                          make_tracker("botsort", 30.0), None, [],
                          PipelineOptions(motion_gate=gate), on_packet=seen).run()
        return sorted(frames), report

    gated, report = detected_frames(GateConfig())
    quiet = range(empty[0] + 15, arrival)  # once the last object has gone
    assert sum(i in quiet for i in gated) <= 3, [i for i in gated if i in quiet]
    assert report["detection"]["gate"]["why"]["quiet"] > 0.8 * len(quiet)
    # The first arrival after the spell is detected within a few frames.
    assert min(i for i in gated if i >= arrival) - arrival <= 5


def test_truth_scores_count_tracks_kept_into_a_quiet_spell():
    """The truth scorer on a scene whose last frames have no object (a static camera's quiet
    spell): tracks reported there are false positives, not an error about the sequence's
    length (which the truth rows alone end too early)."""
    from detstream.stream.pipeline.packet import FramePacket
    from detstream.stream.sinks.truth import TruthScorer

    names = ("thing",)
    scorer = TruthScorer(names)
    box = np.array([[10, 10, 50, 50]], np.float32)
    for index in range(20):
        k = 1 if index < 10 else 0  # the object leaves after frame 9
        truth = Detections(boxes=box[:k], scores=np.ones(k, np.float32),
                           class_ids=np.zeros(k, np.int32), track_ids=np.ones(k, np.int64),
                           class_names=names, data={"visibility": np.ones(k)})
        track = Detections(boxes=box, scores=np.ones(1, np.float32),
                           class_ids=np.zeros(1, np.int32), track_ids=np.array([1]),
                           class_names=names)
        packet = FramePacket(0, index, None, 0.0, np.zeros((60, 60, 3), np.uint8), truth=truth)
        packet.detections = packet.found = track
        scorer.write(packet)
    tracking = scorer.scores()["tracking"]
    assert tracking["FP"] == 10 and tracking["FN"] == 0
