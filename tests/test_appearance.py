"""Appearance in the tracker: detections' embeddings (``data["embedding"]``) fused with IoU the
BoT-SORT way. A crossing that motion gets wrong and looks get right, no change at all without
embeddings, the per-track embedding state, the parameters, and the outputs and benchmark
replays that carry (or leave out) the vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections
from detstream.stream.track import make_tracker
from detstream.stream.track.bytetrack import ByteTrackConfig
from tests.conftest import shared_path

D = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def frame(boxes, embeddings=None, score: float = 0.9) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    data = {} if embeddings is None else {"embedding": np.asarray(embeddings, np.float32)}
    return Detections(boxes=boxes, scores=np.full(len(boxes), score, np.float32),
                      class_ids=np.zeros(len(boxes), np.int32), data=data)


def box(cx: float, cy: float, w: float = 30, h: float = 60) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def meet_and_turn_back(speed: float = 5.0, meet: int = 20, frames: int = 45):
    """Two people of the same class walk towards each other (A from the left, B from the
    right, B 6 px lower), meet at x = 150 on frame ``meet`` (where A hides B: one detection)
    and each walks back the way it came. Per frame: ``[(object, box), ...]``."""
    for t in range(frames):
        apart = speed * abs(meet - t)
        seen = [(0, box(150 - apart, 200)), (1, box(150 + apart, 206))]
        yield seen[:1] if t == meet else seen


def track_meeting(looks: np.ndarray | None, options: dict | None = None,
                  tracker: str = "botsort") -> tuple[dict[int, int], dict[int, int]]:
    """Which object each track id is on, on the fifth and on the last frame. ``looks``: one
    unit vector per object; each detection gets its object's, with a little noise."""
    rng = np.random.default_rng(5)
    track = make_tracker(tracker, fps=30, options=options)
    on: list[dict[int, int]] = []
    for seen in meet_and_turn_back():
        objects = [o for o, _ in seen]
        truth = np.array([b for _, b in seen], np.float32)
        vectors = None
        if looks is not None:
            vectors = unit(looks[objects] + rng.normal(0.0, 0.05, (len(seen), D)))
        out = track.update(frame(truth, vectors))
        centres = (out.boxes[:, 0] + out.boxes[:, 2]) / 2
        on.append({int(i): objects[int(np.abs((truth[:, 0] + truth[:, 2]) / 2 - c).argmin())]
                   for i, c in zip(out.track_ids, centres, strict=True)})
    return on[4], on[-1]


@pytest.mark.parametrize("tracker", ["botsort", "bytetrack"])
def test_appearance_keeps_identities_where_motion_swaps_them(tracker):
    """At the turn the constant-velocity prediction carries each track onto the other person:
    IoU alone swaps the identities. With embeddings each track stays with the one it looks
    like."""
    looks = unit(np.random.default_rng(0).normal(size=(2, D)))
    start, end = track_meeting(None, tracker=tracker)
    assert start == {1: 0, 2: 1}
    assert end == {1: 1, 2: 0}, "the scene is meant to fool IoU matching"
    start, end = track_meeting(looks, {"appearance": False}, tracker=tracker)
    assert end == {1: 1, 2: 0}  # switched off: the vectors are ignored
    start, end = track_meeting(looks, tracker=tracker)
    assert start == {1: 0, 2: 1} and end == {1: 0, 2: 1}


def test_alike_looks_do_not_help_and_the_veto_refuses_a_swap():
    """Two people dressed alike (the same vector): no appearance evidence either way, so the
    IoU result stands. Where the gate keeps looks from helping, the veto (on by default)
    still refuses the swap; switched off, the swap stands."""
    same = unit(np.ones((2, D)))
    assert track_meeting(same)[1] == {1: 1, 2: 0}
    looks = unit(np.random.default_rng(0).normal(size=(2, D)))
    no_veto = {"appearance_veto": 1.0, "proximity_iou": 0.9}  # appearance alone cannot help
    assert track_meeting(looks, no_veto)[1] == {1: 1, 2: 0}
    assert track_meeting(looks, {"proximity_iou": 0.9})[1] == {1: 0, 2: 1}


def test_between_two_alike_neighbours_motion_still_counts():
    """Two neighbours of the same class that look alike (cosine 0.88 between their tracks'
    vectors) stand still, side by side and overlapping. On one frame the vector noise makes
    each detection look a shade more like the other's track. Summed, looks and motion keep
    each track where it is; under BoT-SORT's minimum every alike pair's cost falls to its
    small distance, so the noise alone swaps them."""
    def plane(angle: float) -> np.ndarray:  # a unit vector at ``angle`` in one plane
        v = np.zeros(D, np.float32)
        v[:2] = np.cos(angle), np.sin(angle)
        return v

    left, right = box(100, 200, 100, 200), box(140, 200, 100, 200)  # IoU 0.43

    def run(options: dict | None) -> list[np.ndarray]:
        tracker = make_tracker("botsort", fps=30, options=options)
        ids = []
        for t in range(12):
            angles = (0.35, 0.15) if t == 10 else (0.0, 0.5)  # frame 10: each leans over
            out = tracker.update(frame([left, right], np.stack([plane(a) for a in angles])))
            ids.append(out.track_ids[np.argsort(out.boxes[:, 0])])
        return ids

    summed = run(None)
    assert all(list(ids) == [1, 2] for ids in summed)
    # With the score in the IoU cost (fuse_score, ByteTrack's), the minimum is fooled; the
    # sum is not, with it or without it.
    assert all(list(ids) == [1, 2] for ids in run({"fuse_score": True}))
    swapped = run({"appearance_fusion": "min", "fuse_score": True})
    assert list(swapped[10]) == [2, 1], "the frame is meant to fool looks alone"


def noisy_stream(frames: int = 120, objects: int = 12, seed: int = 3) -> list[Detections]:
    """Objects walking (and turning) in a 640x360 frame, with jitter, misses, weak boxes and
    false boxes: every branch of the association sees work."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform([40, 40], [600, 320], (objects, 2))
    vel = rng.normal(0, 3, (objects, 2))
    size = rng.uniform([20, 40], [50, 110], (objects, 2))
    out = []
    for _ in range(frames):
        turn = rng.random(objects) < 0.03
        vel[turn] *= -1
        pos += vel
        keep = rng.random(objects) > 0.1
        centre = pos[keep] + rng.normal(0, 2, (keep.sum(), 2))
        wh = size[keep] * rng.uniform(0.95, 1.05, (keep.sum(), 2))
        boxes = np.hstack([centre - wh / 2, centre + wh / 2])
        scores = rng.uniform(0.2, 1.0, len(boxes))
        n_false = rng.poisson(1.0)
        corner = rng.uniform(0, 500, (n_false, 2))
        boxes = np.vstack([boxes, np.hstack([corner, corner + 40])])
        scores = np.concatenate([scores, rng.uniform(0.1, 0.7, n_false)])
        out.append(Detections(boxes=boxes, scores=scores,
                              class_ids=np.zeros(len(boxes), np.int32)))
    return out


def with_vectors(frames: list[Detections], kind: str = "random") -> list[Detections]:
    """The frames with embeddings: ``random`` unit vectors, ``zero`` rows (no evidence) or
    the ``same`` vector for every box (everything looks alike)."""
    rng = np.random.default_rng(9)
    vectors = {"random": lambda n: unit(rng.normal(size=(n, D))),
               "zero": lambda n: np.zeros((n, D), np.float32),
               "same": lambda n: unit(np.ones((n, D)))}[kind]
    return [d.replace(data={**d.data, "embedding": vectors(len(d))}) for d in frames]


def run_all(name: str, frames: list[Detections], options: dict | None = None) -> list:
    tracker = make_tracker(name, fps=25, options=options)
    return [tracker.update(d) for d in frames]


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_without_embeddings_tracking_is_exactly_as_before(name):
    """Models without an embedding head, appearance switched off, and vectors that carry no
    evidence (all zero) give the same ids, boxes and scores, bit for bit, on a busy synthetic
    stream and on TUD-Campus's public detections."""
    from detstream.stream.bench.tracker import read_detection_frames

    streams = [noisy_stream()]
    try:
        streams.append(read_detection_frames(shared_path("mot15/TUD-Campus") / "det.txt"))
    except pytest.skip.Exception:
        pass
    for frames in streams:
        plain = run_all(name, frames)
        variants = [run_all(name, frames, {"appearance": False}),
                    run_all(name, with_vectors(frames), {"appearance": False}),
                    run_all(name, with_vectors(frames, "zero"))]
        assert sum(len(d) for d in plain) > 100
        for other in variants:
            for a, b in zip(plain, other, strict=True):
                assert np.array_equal(a.track_ids, b.track_ids)
                assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
        # Vectors that are evidence do change the matching (the comparison is not vacuous).
        looked = run_all(name, with_vectors(frames, "same"))
        assert any(not np.array_equal(a.track_ids, b.track_ids)
                   for a, b in zip(plain, looked, strict=True))


def test_each_track_learns_its_looks_from_strong_matches_only():
    # Orthogonal vectors on one box: the veto would refuse the pair, so it is off here.
    tracker = make_tracker("botsort", fps=30, options={"appearance_veto": 1.0})
    first, second, third = unit(np.eye(3, D)[[0]]), unit(np.eye(3, D)[[1]]), np.eye(3, D)[[2]]
    tracker.update(frame([box(100, 100)], first))
    assert tracker.has_feature.tolist() == [True]
    np.testing.assert_allclose(tracker.feature, first)
    tracker.update(frame([box(101, 100)], second))
    expected = unit(0.9 * first + 0.1 * second)
    np.testing.assert_allclose(tracker.feature, expected, atol=1e-6)
    tracker.update(frame([box(102, 100)], third, score=0.3))  # weak: extends, teaches nothing
    np.testing.assert_allclose(tracker.feature, expected, atol=1e-6)
    # A track born without a vector has a zero row and no flag; ending a track keeps the
    # others' rows aligned; reset forgets everything.
    tracker.update(frame([box(103, 100), box(300, 100)]))
    assert tracker.has_feature.tolist() == [True, False]
    assert not tracker.feature[1].any()
    for _ in range(3):
        tracker.update(frame([box(300, 100)]))
    for _ in range(tracker.max_lost_reid + 2):  # the first track is lost, waits for its
        # looks (reid_seconds), then ends
        tracker.update(frame([box(300, 100)]))
    assert len(tracker) == 1 and tracker.has_feature.tolist() == [False]
    assert tracker.feature.shape == (1, D)
    tracker.reset()
    assert tracker.feature.shape[0] == 0 and len(tracker.has_feature) == 0


def test_a_new_embedding_width_starts_the_looks_afresh():
    tracker = make_tracker("botsort", fps=30)
    tracker.update(frame([box(100, 100)], unit(np.ones((1, 32)))))
    out = tracker.update(frame([box(101, 100)], unit(np.ones((1, 64)))))
    assert out.track_ids.tolist() == [1]
    assert tracker.feature.shape == (1, 64) and tracker.has_feature.tolist() == [True]
    with pytest.raises(ValueError, match="embedding"):
        tracker.update(frame([box(102, 100)], np.ones(1, np.float32)))


def test_the_output_leaves_the_vectors_behind():
    tracker = make_tracker("botsort", fps=30)
    vectors = unit(np.ones((2, D)))
    given = frame([box(100, 100), box(200, 100)], vectors)
    out = tracker.update(given)
    assert len(out) == 2 and "embedding" not in out.data
    assert np.array_equal(given.data["embedding"], vectors)  # the input is left alone


@pytest.mark.parametrize("key, value, message", [
    ("appearance_thresh", 1.5, "appearance_thresh must be from 0 to 1"),
    ("proximity_iou", -0.1, "proximity_iou must be from 0 to 1"),
    ("appearance_veto", float("nan"), "appearance_veto must be from 0 to 1"),
    ("feature_momentum", 2, "feature_momentum must be from 0 to 1"),
    ("appearance", "yes", "appearance must be true or false"),
    ("feature_momentum", True, "feature_momentum must be a number"),
    ("appearance_fusion", "max", "appearance_fusion must be sum or min"),
    ("appearance_weight", -1, "appearance_weight must be from 0 to 10"),
])
def test_appearance_parameters_are_checked(key, value, message):
    with pytest.raises(UserInputError, match=message):
        make_tracker("botsort", options={key: value})


def test_appearance_parameters_come_from_yaml(tmp_path):
    path = tmp_path / "tracker.yaml"
    path.write_text("appearance: false\nappearance_thresh: 0.2\nproximity_iou: 0.4\n"
                    "appearance_veto: 0.45\nfeature_momentum: 0.8\n")
    config = make_tracker("bytetrack", options=path).config
    assert (config.appearance, config.appearance_thresh, config.proximity_iou,
            config.appearance_veto, config.feature_momentum) == (False, 0.2, 0.4, 0.45, 0.8)
    assert ByteTrackConfig().appearance is True


def test_sinks_neither_write_nor_hoard_embeddings(tmp_path):
    from detstream.stream.pipeline.packet import FramePacket
    from detstream.stream.sinks.files import JsonlSink
    from detstream.stream.sinks.truth import TruthScorer

    found = frame([box(100, 100), box(200, 100)], unit(np.ones((2, D))))
    truth = found.replace(track_ids=np.array([1, 2]), data={"visibility": np.ones(2)})
    packet = FramePacket(stream_id=0, index=0, pts=0.0, captured=0.0,
                         image=np.zeros((8, 8, 3), np.uint8), truth=truth, found=found,
                         detections=found)  # no tracker: the detector's own record
    sink = JsonlSink(tmp_path / "d.jsonl")
    sink.write(packet)
    sink.close()
    record = json.loads((tmp_path / "d.jsonl").read_text())
    assert len(record["detections"]) == 2
    assert all(set(d) == {"box", "score", "class_id", "class", "track_id"}
               for d in record["detections"])
    scorer = TruthScorer(("object",))
    scorer.write(packet)
    (_, kept_truth, kept_found, kept_out), = scorer.frames
    assert "embedding" not in kept_found.data and "embedding" not in kept_out.data
    assert "visibility" in kept_truth.data
    assert scorer.scores()["detection"]["map50"] == pytest.approx(1.0)


def test_benchmark_replays_keep_the_detectors_embeddings(tmp_path, monkeypatch):
    """``bench tune`` keeps each frame's detections whole for replay, and ``bench mot`` hands
    the model's detections to the trackers whole: a model with an embedding head is measured
    with appearance."""
    import detstream.stream.bench.mot as mot
    from detstream.stream.bench.tune import measure_scene

    def detector(image: np.ndarray) -> Detections:
        return frame([box(100, 60)], unit(np.ones((1, D))))

    config = mot.scene_configs(1, 4, (320, 180), 30.0)[0]
    sequences = {s.stream: s for s in measure_scene(config, detector, tmp_path / "gt")}
    assert all("embedding" in d.data for d in sequences["model"].detections)
    assert not any("embedding" in d.data for d in sequences["noisy-truth"].detections)

    seen = []

    def recording(name, fps, options=None):
        tracker = make_tracker(name, fps, options)
        update = tracker.update

        def spy(dets, image=None):
            seen.append("embedding" in dets.data)
            return update(dets, image)

        tracker.update = spy
        return tracker

    monkeypatch.setattr(mot, "make_tracker", recording)
    mot.track_scene(config, detector, tmp_path / "mot", {"botsort": ("botsort", {})}, ())
    assert seen.count(True) == 4 and seen.count(False) == 4  # model / noisy-truth streams


def test_broken_vectors_count_as_no_evidence():
    """A NaN or infinite vector (an overflowing half-precision engine) neither crashes nor
    poisons the track's looks: the track goes on, and learns from the next good vector."""
    tracker = make_tracker("botsort", fps=30)
    good = unit(np.ones((1, D)))
    tracker.update(frame([box(100, 100)], good))
    for bad in (np.full((1, D), np.nan), np.full((1, D), np.inf)):
        out = tracker.update(frame([box(101, 100)], bad))
        assert out.track_ids.tolist() == [1]
        np.testing.assert_allclose(tracker.feature, good, atol=1e-6)


def test_bench_tracker_times_appearance_too(tmp_path):
    from tests.conftest import run_cli, run_main

    out = tmp_path / "speed.json"
    dets = shared_path("mot15/TUD-Campus") / "det.txt"
    result = run_main("bench", "tracker", "--dets", str(dets), "--fps", "25", "--seconds",
                     "0.05", "--size", "160x96", "--trackers", "botsort", "--embed-dims", "32",
                     "--json", str(out))
    assert result.returncode == 0, result.stderr
    rates = json.loads(out.read_text())["trackers"]
    assert set(rates) == {"botsort", "botsort+emb32"} and min(rates.values()) > 0
    assert "botsort+emb32" in result.stdout
    bad = run_cli("bench", "tracker", "--dets", str(dets), "--embed-dims", "32,0")
    assert bad.returncode == 2 and "--embed-dims" in bad.stderr


def test_a_model_with_an_embedding_head_is_tracked_with_appearance(tmp_path, monkeypatch):
    """End to end with the default model's embedding head: the post-processed vectors reach
    the tracker in ``bench mot`` and in ``detstream run``, the tracks learn them, and the
    outputs stay as they were."""
    import detstream.stream.bench.mot as mot
    from tests.conftest import run_main

    trackers = []

    def recording(name, fps, options=None):
        trackers.append(make_tracker(name, fps, options))
        return trackers[-1]

    monkeypatch.setattr(mot, "make_tracker", recording)
    config = mot.scene_configs(1, 12, (320, 180), 30.0)[0]
    detector = mot.model_detector("default", "torch", conf=0.1)
    assert detector(np.zeros((180, 320, 3), np.uint8)).data["embedding"].shape[1] == 32
    mot.track_scene(config, detector, tmp_path / "mot", {"botsort": ("botsort", {})}, ())
    model_tracker, truth_tracker = trackers[1], trackers[0]  # streams: noisy-truth, model
    assert model_tracker.feature.shape[1] == 32 and model_tracker.has_feature.any()
    assert not truth_tracker.has_feature.any()

    out = tmp_path / "run.jsonl"
    result = run_main("run", "--source", "synthetic://?seed=3&size=320x180&fps=30", "--model",
                     "default", "--imgsz", "256", "--backend", "torch", "--max-frames", "8",
                     "--save-json", str(out))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 8
    # The vectors stay inside: a box's record is what it was (a coasted guess is flagged).
    fields = {"box", "score", "class_id", "class", "track_id"}
    assert all(fields <= set(d) <= fields | {"coasted"}
               for r in records for d in r["detections"])


def reappear(looks_back: np.ndarray, cls: int = 0, options: dict | None = None,
             hidden: int = 20) -> tuple[int, int]:
    """A person walks right (4 px a frame), disappears for ``hidden`` frames (behind
    something), and comes out 150 px left of where its motion pointed (it slowed down
    there), with ``looks_back`` and class ``cls``. The first track id, and the id at the
    end."""
    rng = np.random.default_rng(2)
    look = unit(rng.normal(size=(1, D)))
    tracker = make_tracker("botsort", fps=30, options=options)
    first = None
    for t in range(20):
        out = tracker.update(frame([box(100 + 4 * t, 200)], look))
        first = int(out.track_ids[0]) if len(out) else first
    for _ in range(hidden):
        tracker.update(frame(np.zeros((0, 4)), np.zeros((0, D))))
    where = 100 + 4 * (20 + hidden) - 150
    for t in range(5):
        seen = frame([box(where + 4 * t, 200)], looks_back)
        seen = seen.replace(class_ids=np.full(1, cls, np.int32))
        out = tracker.update(seen)
    return first, int(out.track_ids[0])


def test_a_lost_track_is_found_again_by_its_looks_away_from_its_prediction():
    rng = np.random.default_rng(2)
    look = unit(rng.normal(size=(1, D)))  # the same as the walker's (same generator)
    first, last = reappear(look)
    assert last == first  # re-identified, although its box is far from the prediction
    off_first, off_last = reappear(look, options={"reid_thresh": 0.0})
    assert off_last != off_first  # without the stage: a new track
    other = unit(np.random.default_rng(9).normal(size=(1, D)))
    assert len(set(reappear(other))) == 2  # someone who looks different: a new track
    assert len(set(reappear(look, cls=1))) == 2  # the same looks on another class: new
    assert len(set(reappear(look, options={"reid_reach": 0.5}))) == 2  # out of reach: new


def test_a_track_with_looks_waits_reid_seconds_and_only_for_its_looks():
    rng = np.random.default_rng(2)
    look = unit(rng.normal(size=(1, D)))  # the walker's own looks (see reappear)
    # Hidden 3 s (90 frames): past lost_seconds (1.5 s), within reid_seconds (4 s).
    first, last = reappear(look, hidden=90)
    assert last == first
    assert len(set(reappear(look, hidden=90, options={"reid_seconds": 0}))) == 2  # ended
    assert len(set(reappear(look, hidden=150))) == 2  # 5 s: past reid_seconds too
    # Someone who looks different, appearing while the old track waits: a new track.
    other = unit(np.random.default_rng(9).normal(size=(1, D)))
    assert len(set(reappear(other, hidden=90))) == 2


def test_a_lost_track_is_recovered_where_it_was_last_seen():
    # A walker at 8 px a frame stops behind something and is unseen for 20 frames, while its
    # prediction walks on 160 px. It comes out where it went in, looking a little different
    # (distance 0.075: within appearance_thresh 0.1, not within reid_thresh 0.05). Its last
    # detected box overlaps, so it keeps its id; without the stage, or looking unlike, a new
    # track starts.
    look = np.zeros((1, D), np.float32)
    look[0, 0] = 1.0
    changed = np.zeros((1, D), np.float32)
    changed[0, :2] = 0.85, np.sqrt(1 - 0.85 ** 2)  # cosine 0.85
    stranger = np.zeros((1, D), np.float32)
    stranger[0, 1] = 1.0

    def ids(comes_back: np.ndarray, options: dict | None = None) -> tuple[int, int]:
        tracker = make_tracker("botsort", 30, {"camera_motion": False, **(options or {})})
        for t in range(20):
            first = tracker.update(frame([box(100 + 8 * t, 100)], look)).track_ids.tolist()
        for _ in range(20):
            tracker.update(frame([], np.zeros((0, D))))
        for _ in range(2):  # a new track is confirmed on its second frame
            last = tracker.update(frame([box(252, 100)], comes_back)).track_ids.tolist()
        assert len(first) == len(last) == 1
        return first[0], last[0]

    first, last = ids(changed)
    assert last == first
    assert len(set(ids(changed, {"recover_iou": 0}))) == 2
    assert len(set(ids(stranger))) == 2


def test_a_box_inside_a_tracked_one_starts_a_track_only_if_it_looks_like_another_object():
    # A big walker is tracked; a small box appears wholly inside its box. Without vectors, or
    # looking like the walker (a part of it, or a second box on it), it starts no track;
    # looking unlike it, it is someone half hidden behind the walker and is tracked.
    walker = np.zeros((1, D), np.float32)
    walker[0, 0] = 1.0
    stranger = np.zeros((1, D), np.float32)
    stranger[0, 1] = 1.0

    def tracked_ids(inner: np.ndarray | None) -> list[int]:
        tracker = make_tracker("botsort", 30, {"camera_motion": False})
        looks = None if inner is None else walker
        for _ in range(3):
            tracker.update(frame([box(200, 200, 100, 200)], looks))
        both = None if inner is None else np.concatenate([walker, inner])
        for _ in range(3):
            out = tracker.update(frame([box(200, 200, 100, 200), box(210, 190, 30, 60)], both))
        return sorted(out.track_ids.tolist())

    assert tracked_ids(None) == [1]
    assert tracked_ids(walker) == [1]
    assert tracked_ids(stranger) == [1, 2]


def test_a_track_with_looks_is_found_farther_from_its_prediction():
    """An object walking at 3 px a frame jumps 24 px sideways on frame 13 (a stumble, a
    missed frame's worth of motion): its box barely overlaps the prediction (plain IoU about
    0.15, a cost above ``match_cost``, and below ``proximity_iou``, so looks do not count).
    A track with an appearance vector searches the wider, buffered box
    (``looks_buffer_sigmas``), where its looks count and vouch for the detection: it is
    matched on that very frame. Without vectors, or without that buffer, it is not (plain
    IoU, ``buffer_sigmas`` 0, as the real sequences chose)."""
    rng = np.random.default_rng(1)
    look = unit(rng.normal(size=(1, D)))

    def matched_on_the_jump(with_looks: bool, options: dict | None = None) -> list[int]:
        tracker = make_tracker("botsort", fps=30, options=options)
        for t in range(13):
            x = 100 + 3 * t + (24 if t == 12 else 0)
            out = tracker.update(frame([box(x, 200)], look if with_looks else None))
        return out.track_ids[~out.data["coasted"]].tolist()

    assert matched_on_the_jump(True) == [1]
    assert matched_on_the_jump(False) == []
    assert matched_on_the_jump(True, {"looks_buffer_sigmas": 0.0}) == []
