"""Late detections (issue 36): a detection that comes back frames after its frame is applied to
the tracks as they were on that frame and brought forward to the present."""

from __future__ import annotations

import numpy as np
import pytest

from detstream.engines.spec import Detections
from detstream.stream.pipeline.late import DetectionJob, LateTracking
from detstream.stream.track import make_tracker

NAMES = ("thing",)
SPEED = 6.0  # pixels per frame, to the right
LATE = 3  # frames a detection takes to come back


def scripted_boxes(frame: int) -> np.ndarray:
    """Three objects moving right at constant speed, one row apart."""
    x = 40.0 + SPEED * frame
    return np.array([[x, 40.0 + 120 * k, x + 50, 120.0 + 120 * k] for k in range(3)],
                    np.float32)


def detections(frame: int) -> Detections:
    boxes = scripted_boxes(frame)
    return Detections(boxes=boxes, scores=np.full(len(boxes), 0.9, np.float32),
                      class_ids=np.zeros(len(boxes), np.int32), class_names=NAMES)


def job(frame: int, clock: list[int], late: int = LATE) -> DetectionJob:
    """A detection on ``frame`` that is ready once the clock reaches ``frame + late``."""
    return DetectionJob(frame, IMAGE, lambda: clock[0] >= frame + late,
                        lambda: detections(frame))


IMAGE = np.full((480, 640, 3), 90, np.uint8)


def error_px(reported: Detections, frame: int) -> float:
    """Mean distance of the reported boxes' edges from the truth's on ``frame`` (each truth
    box to its nearest report), or inf when a truth box has none."""
    if len(reported) < 3:
        return float("inf")
    truth = scripted_boxes(frame)
    gaps = np.abs(reported.boxes[None, :, :] - truth[:, None, :]).mean(axis=2)
    return float(gaps.min(axis=1).mean())


def test_a_late_detection_lands_on_its_own_frame_and_the_tracks_come_forward():
    """The detector is slowed on purpose: each detection comes back LATE frames after its
    frame, and the next one starts then. The tracks reported on every frame are where the
    objects are on that frame, not where they were when the detector looked."""
    late = LateTracking(make_tracker("bytetrack", 30.0), NAMES)
    clock = [0]
    errors, found_at = [], {}
    for frame in range(60):
        clock[0] = frame
        if frame % LATE == 0:
            late.submit(job(frame, clock))
        step = late.step(frame, IMAGE)
        for index, _ in step.found:
            found_at[index] = frame
        if frame >= 4 * LATE:  # after the velocity is learnt
            errors.append(error_px(step.detections, frame))
    # Each detection was applied when it came, for the frame it was made on.
    assert found_at and all(seen - index == LATE for index, seen in found_at.items())
    assert late.stats.applied == len(found_at)
    assert late.stats.report()["frames_late_mean"] == LATE
    # Brought forward: within 2 px of the truth on every frame. Applied as if it were made
    # on the frame at hand, a detection is LATE * SPEED = 18 px behind (next test).
    assert max(errors) < 2.0, errors


def test_applying_late_detections_as_current_would_lag():
    """The contrast the test above rests on: the same detections applied on the frame they
    arrive with leave the tracks a detection's age behind."""
    tracker = make_tracker("bytetrack", 30.0)
    errors = []
    for frame in range(60):
        if frame >= LATE and (frame - LATE) % LATE == 0:
            reported = tracker.update(detections(frame - LATE), IMAGE)
        else:
            reported = tracker.carry(Detections.empty(NAMES), IMAGE)
        if frame >= 4 * LATE:
            errors.append(error_px(reported, frame))
    # 18 px behind along x: 9 px averaged over the box's four edges.
    assert min(errors) > 8.0


def test_detections_ready_on_their_frame_track_as_the_tracker_alone():
    """Files: each frame's detections are ready when it is tracked; the output is exactly
    the tracker's own, frame by frame (no state kept)."""
    alone, late = make_tracker("botsort", 30.0), LateTracking(make_tracker("botsort", 30.0),
                                                               NAMES)
    snapshots = []  # a copy of the tracker's state costs 0.5 ms a frame: files need none
    take = late.tracker.snapshot
    late.tracker.snapshot = lambda: snapshots.append(1) or take()
    rng = np.random.default_rng(0)
    for frame in range(40):
        image = rng.integers(0, 255, (240, 320, 3), np.uint8)
        dets = detections(frame) if frame % 2 == 0 else None
        expected = (alone.update(dets, image) if dets is not None
                    else alone.carry(Detections.empty(NAMES), image))
        own = None if dets is None else DetectionJob(frame, image, lambda: True,
                                                     lambda d=dets: d)
        step = late.step(frame, image, own, keep_states=False)
        np.testing.assert_array_equal(step.detections.boxes, expected.boxes)
        np.testing.assert_array_equal(step.detections.track_ids, expected.track_ids)
        assert [e.kind for e in step.events] == [e.kind for e in alone.events]
    assert late.stats.applied == 0 and not snapshots


def test_a_detection_older_than_the_kept_states_lands_on_the_oldest_kept():
    late = LateTracking(make_tracker("bytetrack", 30.0), NAMES, history=4)
    clock = [0]
    late.submit(job(0, clock, late=10))
    for frame in range(12):
        clock[0] = frame
        late.step(frame, IMAGE)
    assert late.stats.applied == 1
    assert late.stats.frames_late_max == 10
    assert len(late.tracker) == 3  # tracks started from the late detection


def test_without_a_tracker_the_newest_detections_are_held():
    late = LateTracking(None, NAMES)
    clock = [0]
    late.submit(job(0, clock, late=2))
    shown = []
    for frame in range(5):
        clock[0] = frame
        shown.append(len(late.step(frame, IMAGE).detections))
    assert shown == [0, 0, 3, 3, 3]


@pytest.mark.parametrize("swap_at", [2])
def test_a_new_tracker_drops_detections_meant_for_the_old(swap_at):
    late = LateTracking(make_tracker("bytetrack", 30.0), NAMES)
    clock = [0]
    late.submit(job(0, clock))
    for frame in range(6):
        clock[0] = frame
        if frame == swap_at:
            late.use(make_tracker("bytetrack", 30.0))
        late.step(frame, IMAGE)
    assert late.stats.applied == 0 and late.waiting == 0


# ---------------------------------------------------------------- the pipeline, live
SCENE = "synthetic://?seed=5&size=320x192&fps=30&frames=75"


@pytest.fixture(scope="module")
def recorded():
    """The real model's outputs on every frame of SCENE (for replay at a chosen speed), and
    its detections per frame from a file run."""
    from detstream.engines.predict import Predictor
    from detstream.engines.runtime.replay import RecordingBackend
    from detstream.engines.runtime.select import open_backend
    from detstream.stream.pipeline.runner import Pipeline, PipelineOptions
    from detstream.stream.sources import open_source

    recording = RecordingBackend(open_backend("default", "onnxruntime", imgsz=160, threads=1))
    reference: dict[int, Detections] = {}
    Pipeline(open_source(SCENE), Predictor(recording), None, None, [],
             PipelineOptions(detect_every=1),
             on_packet=lambda p: reference.__setitem__(p.index, p.found)).run()
    assert len(reference) == 75
    return recording, reference


def run_live(recording, infer_ms: float, hold_ms: float) -> tuple[dict, list]:
    """SCENE as a paced 30 fps camera, its detector replayed after ``infer_ms``."""
    from detstream.engines.predict import Predictor
    from detstream.engines.runtime.replay import ReplayBackend
    from detstream.stream.pipeline.runner import Pipeline, PipelineOptions
    from detstream.stream.sources import open_source

    packets = []
    live = Pipeline(open_source(SCENE + "&live=1"),
                    Predictor(ReplayBackend(recording, infer_ms=infer_ms)),
                    make_tracker("botsort", 30.0), None, [],
                    PipelineOptions(hold_ms=hold_ms), on_packet=packets.append)
    return live.run(), packets


def test_a_slowed_detector_on_a_live_camera_lands_each_result_on_its_own_frame(recorded):
    """A detector slowed on purpose to 120 ms: every frame still comes out, tracked, and each
    detection that comes back late is the detector's output for the frame it was made on."""
    recording, reference = recorded
    report, packets = run_live(recording, infer_ms=120.0, hold_ms=0.0)
    assert report["detection"]["schedule"].startswith("as often as inference allows")
    assert report["frames_out"] == len(packets) >= 60  # camera rate: (nearly) every frame
    late = [(packet.index, index, found) for packet in packets
            for index, found in packet.found_late]
    assert len(late) >= 10
    for arrived, index, found in late:
        assert arrived - index >= 3  # 120 ms at 30 fps: at least 3 frames later
        np.testing.assert_allclose(found.boxes, reference[index].boxes, atol=1e-3)
    assert report["detection"]["late"]["frames_late_mean"] >= 3
    # Between the detector's looks the frames still carry the tracks (how well they follow
    # the objects is the unit tests' part, above).
    first = min(arrived for arrived, _, _ in late)
    tracked = [len(packet.detections) > 0 for packet in packets if packet.index > first + 10]
    assert np.mean(tracked) > 0.8


def test_a_frame_the_detector_works_on_waits_for_its_result_within_the_hold(recorded):
    """With a hold longer than inference, frames the detector looked at leave with their own
    detections; without one, every result arrives after its frame left."""
    recording, reference = recorded
    _, held = run_live(recording, infer_ms=40.0, hold_ms=300.0)
    own = [p for p in held if p.found is not None]
    late = [index for p in held for index, _ in p.found_late]
    assert len(own) >= 10 and len(own) > 3 * len(late)
    for packet in own:
        np.testing.assert_allclose(packet.found.boxes, reference[packet.index].boxes, atol=1e-3)
    _, unheld = run_live(recording, infer_ms=40.0, hold_ms=0.0)
    assert sum(p.found is not None for p in unheld) < sum(len(p.found_late) for p in unheld)
