"""Trackers: the Kalman filter against hand-computed values, identities through crossings,
occlusions and scene cuts, camera motion, and the MOT scoring through TrackEval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detstream.engines.errors import UserInputError
from detstream.engines.metrics.mot import evaluate_mot
from detstream.engines.spec import Detections
from detstream.stream.track import ByteTrackConfig, make_tracker
from detstream.stream.track.kalman import KalmanFilter
from detstream.stream.track.motion import CameraMotion
from tests.conftest import run_cli, run_main, shared_path


def dets(*boxes: tuple[float, float, float, float], score: float = 0.9) -> Detections:
    return Detections(boxes=np.array(boxes, np.float32).reshape(-1, 4),
                      scores=np.full(len(boxes), score, np.float32),
                      class_ids=np.zeros(len(boxes), np.int32))


def box(cx: float, cy: float, w: float = 20, h: float = 40) -> tuple[float, ...]:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def test_kalman_predict_and_update_match_hand_computed_values():
    kf = KalmanFilter("xyah")  # position noise h/20, velocity noise h/160
    mean, cov = kf.initiate(np.array([[100.0, 50.0, 0.5, 40.0]]))
    np.testing.assert_allclose(np.diag(cov[0]), [16, 16, 1e-4, 16, 6.25, 6.25, 1e-10, 6.25])
    mean, cov = kf.predict(mean, cov)
    np.testing.assert_allclose(mean[0, :4], [100, 50, 0.5, 40])
    assert cov[0, 0, 0] == pytest.approx(16 + 6.25 + 4)     # P + P_v + Q
    assert cov[0, 0, 4] == pytest.approx(6.25)
    assert cov[0, 4, 4] == pytest.approx(6.25 + 0.0625)
    mean, cov = kf.update(mean, cov, np.array([[104.0, 50.0, 0.5, 40.0]]))
    # S = 26.25 + R (= 4); K = 26.25 / 30.25 for x and 6.25 / 30.25 for its velocity.
    assert mean[0, 0] == pytest.approx(100 + 4 * 26.25 / 30.25)
    assert mean[0, 4] == pytest.approx(4 * 6.25 / 30.25)
    assert cov[0, 0, 0] == pytest.approx(26.25 * 4 / 30.25)


@pytest.mark.parametrize("state", ["xyah", "xywh"])
def test_a_fast_shrinking_box_never_predicts_a_negative_size(state):
    """An object leaving through the frame's edge: its clipped box shrinks by 5 px a frame,
    then it is gone. The filter's prediction stops at the smallest size, never below."""
    kf = KalmanFilter(state, std_position=0.03)
    mean, cov = kf.initiate(kf.from_boxes(np.array([[600.0, 100.0, 640.0, 180.0]])))
    for k in range(1, 8):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, kf.from_boxes(np.array([[600.0 + 5 * k, 100.0,
                                                                  640.0, 180.0]])))
    for _ in range(60):
        mean, cov = kf.predict(mean, cov)
        wh = np.diff(kf.to_boxes(mean).reshape(2, 2), axis=0)[0]
        assert (wh > 0).all(), wh


def test_kalman_boxes_round_trip_in_both_parametrisations():
    xyxy = np.array([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 8.0, 4.0]])
    for state in ("xyah", "xywh"):
        kf = KalmanFilter(state)
        mean, _ = kf.initiate(kf.from_boxes(xyxy))
        np.testing.assert_allclose(kf.to_boxes(mean), xyxy, atol=1e-9)


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_crossing_objects_keep_their_identities(name):
    tracker = make_tracker(name, fps=30)
    first = last = None
    for t in range(60):  # A goes right, B goes left; they overlap around t = 30
        a, b = box(20 + 5 * t, 100), box(320 - 5 * t, 108)
        out = tracker.update(dets(a, b))
        ids = {int(i): out.boxes[k, 0] for k, i in enumerate(out.track_ids)}
        if t == 2:
            first = sorted(ids, key=ids.get)  # left to right: A, B
        if t == 59:
            last = sorted(ids, key=ids.get)   # left to right: B, A
    assert first is not None and len(first) == 2
    assert last == first[::-1]


def test_a_short_full_occlusion_keeps_the_old_identity():
    tracker = make_tracker("bytetrack", fps=30)
    seen = []
    for t in range(50):
        hidden = 20 <= t < 32  # 12 frames (0.4 s) with no detection at all
        out = tracker.update(dets() if hidden else dets(box(50 + 4 * t, 120)))
        seen.append(out.track_ids.tolist())
    # Coasted (reported where predicted) for its default 0.2 s, 6 frames; then unseen.
    assert seen[20:26] == [seen[19]] * 6 and all(ids == [] for ids in seen[26:32])
    assert seen[19] == seen[33] == seen[49] and len(seen[19]) == 1


def test_missed_detections_are_bridged_by_coasted_boxes_for_their_time(tmp_path):
    # One object moving 4 px a frame, undetected on frames 20-25: with coast_seconds 0.1 at
    # 30 fps its track is reported at its predicted box (flagged coasted) on frames 20-22,
    # not after; found again on frame 26 it keeps its id. Gap filling puts the straight line
    # in place of the guesses, and JSON Lines flags them.
    from detstream.stream.pipeline.packet import FramePacket
    from detstream.stream.sinks.files import JsonlSink
    from detstream.stream.track.interpolate import interpolate_tracks

    tracker = make_tracker("bytetrack", fps=30, options={"coast_seconds": 0.1})
    outs = {}
    for t in range(40):
        outs[t] = tracker.update(dets() if 20 <= t < 26 else dets(box(50 + 4 * t, 120)))
    first = outs[19].track_ids.tolist()
    assert len(first) == 1 and outs[26].track_ids.tolist() == first
    for t in range(20, 26):
        coasted = outs[t].data["coasted"].tolist()
        assert coasted == ([True] if t < 23 else []), t
    for t in (20, 21, 22):
        centre = (outs[t].boxes[0, 0] + outs[t].boxes[0, 2]) / 2
        assert abs(centre - (50 + 4 * t)) < 2, (t, centre)
    assert not outs[19].data["coasted"].any()
    filled, added = interpolate_tracks(outs, fps=30)
    assert added == 6 and not any("coasted" in d.data for d in filled.values())
    sink = JsonlSink(tmp_path / "c.jsonl")
    for t in (19, 20):
        sink.write(FramePacket(stream_id=0, index=t, pts=0.0, captured=0.0,
                               image=np.zeros((8, 8, 3), np.uint8), detections=outs[t]))
    sink.close()
    lines = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert "coasted" not in lines[0]["detections"][0]
    assert lines[1]["detections"][0]["coasted"] is True


@pytest.mark.parametrize("state", ["xyah", "xywh"])
def test_a_lost_box_keeps_its_shape_and_size(state):
    # The object narrows for a while (turning), then is hidden: its lost box must not go on
    # narrowing to nothing, or it could never be found again where it reappears.
    tracker = make_tracker("bytetrack", fps=30, options={"state": state, "lost_seconds": 2})
    for t in range(20):
        tracker.update(dets(box(100 + 3 * t, 100, w=40 - t, h=60)))
    last = tracker.kf.to_boxes(tracker.mean)[0]
    for _ in range(40):
        tracker.update(dets())
    now = tracker.kf.to_boxes(tracker.mean)[0]
    np.testing.assert_allclose(now[2:] - now[:2], last[2:] - last[:2], rtol=0.05)


def test_a_track_hidden_behind_another_is_reported_for_its_time():
    # A small object walks behind a big one: no detection while it is inside the big box.
    # With coast_seconds and coast_cover 1 it is reported where its motion puts it (its own
    # id), for at most that long; without it (or once out of time) it is not reported.
    def run(options):
        tracker = make_tracker("bytetrack", fps=10, options=options)
        frames = []
        for t in range(40):
            small = box(60 + 5 * t, 100, w=20, h=40)
            behind = 150 <= 60 + 5 * t <= 250  # inside the big box's 120..280 span
            big = box(200, 100, w=160, h=80)
            out = tracker.update(dets(big) if behind else dets(big, small))
            frames.append(dict(zip(out.track_ids.tolist(), out.boxes.tolist(), strict=True)))
        return frames
    hidden = range(18, 39)  # frames with the small object behind (x 150..250)
    plain = run({"coast_seconds": 0})
    assert all(len(plain[t]) == 1 for t in hidden)
    reported = run({"coast_seconds": 1.0, "coast_cover": 1.0})
    small_id = next(i for i in reported[10] if i != next(iter(reported[0])))
    shown = [t for t in hidden if small_id in reported[t]]
    assert shown == list(range(18, 28))  # 1 s at 10 fps, then no more
    x_centre = [0.5 * (reported[t][small_id][0] + reported[t][small_id][2]) for t in shown]
    np.testing.assert_allclose(x_centre, [60 + 5 * t for t in shown], atol=3)


def test_a_lost_track_ends_after_its_time_in_seconds():
    # 0.5 s at 10 fps is 5 frames, at 60 fps 30 frames: the same gap ends one and not the other.
    for fps, same in ((10, False), (60, True)):
        tracker = make_tracker("bytetrack", fps=fps, options={"lost_seconds": 0.5})
        before = tracker.update(dets(box(100, 100))).track_ids.tolist()
        before = tracker.update(dets(box(100, 100))).track_ids.tolist()
        for _ in range(10):
            tracker.update(dets())
        after = tracker.update(dets(box(100, 100))).track_ids.tolist()
        after = tracker.update(dets(box(100, 100))).track_ids.tolist()
        assert (after == before) is same, fps


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_a_track_reports_its_start_loss_recovery_and_end(name):
    """Seen from frame 0, hidden 10-14, seen again 15-19, then gone for good; a second object
    only flickers once and never gets an id (no events)."""
    tracker = make_tracker(name, fps=10, options={"lost_seconds": 0.5})
    log = []
    for t in range(35):
        boxes = [box(50 + 3 * t, 100)] if t < 10 or 15 <= t < 20 else []
        if t == 25:
            boxes.append(box(250, 100))
        tracker.update(dets(*boxes))
        log += [(t, e.kind, e.track_id) for e in tracker.events]
    assert log == [(0, "started", 1), (10, "lost", 1), (15, "recovered", 1), (20, "lost", 1),
                   (25, "ended", 1)]  # lost for more than 0.5 s: 5 frames at 10 fps
    tracker.reset()
    tracker.update(dets(box(40, 40)))
    assert [(e.kind, e.track_id) for e in tracker.events] == [("started", 1)]


def test_no_identity_survives_a_scene_cut():
    h, w = 180, 320
    shot_a = np.zeros((h, w, 3), np.uint8)
    shot_a[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]   # blue, left to right
    shot_b = np.zeros((h, w, 3), np.uint8)
    shot_b[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]   # red, top to bottom
    tracker = make_tracker("botsort", fps=30)
    ids = []
    for t in range(20):
        frame = shot_a if t < 10 else shot_b
        ids.append(set(tracker.update(dets(box(100, 90), box(200, 90)), frame).track_ids))
    assert len(ids[9]) == 2 and len(ids[12]) == 2
    assert not ids[9] & ids[12]
    assert tracker.cut_count == 1


def test_camera_motion_recovers_a_known_shift():
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 256, (400, 700, 3), np.uint8)
    scene = np.ascontiguousarray(np.repeat(np.repeat(scene[::4, ::4], 4, 0), 4, 1))
    motion = CameraMotion(width=320)
    motion.estimate(scene[50:350, 50:650])
    affine = motion.estimate(scene[50:350, 62:662])  # the camera moved 12 px right
    np.testing.assert_allclose(affine[:, :2], np.eye(2), atol=0.01)
    np.testing.assert_allclose(affine[:, 2], [-12, 0], atol=1.0)


def test_bad_tracker_options_are_clear():
    with pytest.raises(UserInputError, match="unknown tracker 'sort'"):
        make_tracker("sort")
    with pytest.raises(UserInputError, match="unknown tracker parameter"):
        make_tracker("bytetrack", options={"speed": 2})
    with pytest.raises(UserInputError, match="must be true or false"):
        make_tracker("bytetrack", options={"fuse_score": "no"})


def test_eval_mot_reproduces_the_reference_scores(tmp_path):
    folder = shared_path("mot15/TUD-Campus")
    combined, _ = evaluate_mot(folder / "gt.txt", folder / "tracker_result.txt")
    assert round(combined.MOTA, 4) == 0.5265
    assert round(combined.IDF1, 4) == 0.5577
    assert round(combined.HOTA, 4) == 0.3914
    assert (combined.FP, combined.FN, combined.IDSW) == (13, 150, 7)
    out = tmp_path / "scores.json"
    result = run_cli("eval-mot", "--gt", str(folder / "gt.txt"), "--pred",
                     str(folder / "tracker_result.txt"), "--json", str(out))
    assert result.returncode == 0 and "MOTA 0.5265" in result.stdout
    assert {"HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN"} <= set(json.loads(out.read_text()))


def test_malformed_mot_file_names_the_line(tmp_path):
    folder = shared_path("mot15/TUD-Campus")
    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,10,10,5,5,1,-1,-1,-1\n2,1,ten,10,5,5,1,-1,-1,-1\n")
    result = run_cli("eval-mot", "--gt", str(folder / "gt.txt"), "--pred", str(bad))
    assert result.returncode == 2 and "bad.txt:2:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_update_leaves_its_input_alone_and_reset_restarts_ids(name):
    tracker = make_tracker(name, fps=30)
    first = dets(box(50, 50), box(150, 50))
    before = (first.boxes.copy(), first.track_ids.copy())
    ids = tracker.update(first).track_ids.tolist()
    assert np.array_equal(first.boxes, before[0]) and np.array_equal(first.track_ids, before[1])
    tracker.update(dets(box(300, 50)))
    tracker.reset()
    assert len(tracker) == 0
    assert sorted(tracker.update(first).track_ids.tolist()) == sorted(ids) == [1, 2]


def test_carry_moves_tracks_along_their_velocity_without_detections():
    tracker = make_tracker("bytetrack", fps=30)
    for t in range(10):
        out = tracker.update(dets(box(100 + 6 * t, 80)))
    (track_id,) = out.track_ids.tolist()
    carried = [tracker.carry(out) for _ in range(3)]
    centres = [float(c.boxes[0, [0, 2]].mean()) for c in carried]
    assert all(c.track_ids.tolist() == [track_id] for c in carried)
    assert centres[0] < centres[1] < centres[2] and 5 < centres[1] - centres[0] < 7
    assert tracker.update(dets(box(100 + 6 * 13, 80))).track_ids.tolist() == [track_id]


def tracked(*rows: tuple[int, float, float]) -> Detections:
    """Boxes 10x10 at (x, y) with the given track ids: rows of (id, x, y)."""
    return Detections(boxes=np.array([(x, y, x + 10, y + 10) for _, x, y in rows], np.float32),
                      scores=np.full(len(rows), 0.9, np.float32),
                      class_ids=np.zeros(len(rows), np.int32),
                      track_ids=np.array([i for i, _, _ in rows], np.int32))


def test_interpolation_fills_gaps_inside_tracks_only():
    from detstream.stream.track.interpolate import GapFill, interpolate_tracks

    frames = {1: tracked((1, 0, 0), (2, 100, 0), (4, 200, 0)), 2: tracked((1, 10, 0), (2, 100, 0)),
              3: Detections.empty(), 4: tracked((4, 300, 100)),
              5: tracked((1, 40, 0), (3, 50, 50))}
    filled, added = interpolate_tracks(frames, fps=30)
    assert added == 2 and list(filled) == [1, 2, 3, 4, 5]
    # Track 1 moves 10 px a frame and is found again where that motion puts it: filled.
    for frame, x in ((3, 20), (4, 30)):
        one = filled[frame][filled[frame].track_ids == 1]
        assert np.allclose(one.boxes, [[x, 0, x + 10, 10]])
    # Track 4 reappears 14 box sizes from where it stood: possibly another object, not filled.
    # Track 2 ends at frame 2 and track 3 starts at 5: neither is extended, and ids never mix.
    assert [sorted(filled[f].track_ids.tolist()) for f in (1, 2, 3, 4, 5)] == \
        [[1, 2, 4], [1, 2], [1], [1, 4], [1, 3]]
    everything, added = interpolate_tracks(frames, fps=30, fill=GapFill(max_jump=np.inf))
    assert added == 4 and sorted(everything[3].track_ids.tolist()) == [1, 4]


@pytest.mark.parametrize("fps, seconds, filled", [
    (30, 0.1, {1: 2}), (30, 0.05, {}), (10, 0.1, {}), (25, 1.0, {1: 2, 2: 4}),
    (25, 0.12, {1: 2})])
def test_gap_filling_never_spans_more_than_its_limit_in_seconds(fps, seconds, filled):
    """Two still objects unseen for two and for four frames: a gap is filled only when it
    lasts at most ``seconds`` at the sequence's frame rate."""
    from detstream.stream.track.interpolate import GapFill, interpolate_tracks

    frames = {1: tracked((1, 0, 0), (2, 50, 0)), 4: tracked((1, 0, 0)), 6: tracked((2, 50, 0))}
    out, added = interpolate_tracks(frames, fps, GapFill(max_seconds=seconds))
    assert GapFill(max_seconds=seconds).max_frames(fps) == int(seconds * fps + 1e-9)
    rows = np.concatenate([d.track_ids for d in out.values()])
    before = np.concatenate([d.track_ids for d in frames.values()])
    per_track = {t: int((rows == t).sum() - (before == t).sum()) for t in (1, 2)}
    assert {t: n for t, n in per_track.items() if n} == filled
    assert added == sum(filled.values())


def test_track_command_says_which_frame_rate_and_size_it_used(tmp_path):
    from detstream.engines.data.mot import SeqInfo, write_seqinfo

    dets = tmp_path / "seq" / "det" / "det.txt"
    dets.parent.mkdir(parents=True)
    dets.write_text("".join(f"{f},-1,{5 * f},0,10,10,0.9,-1,-1,-1\n" for f in range(1, 6)))
    out = tmp_path / "t.txt"
    said = {}
    for label, extra in (("assumed", ()), ("given", ("--fps", "12.5", "--size", "320x240"))):
        result = run_cli("track", "--dets", str(dets), "--out", str(out), *extra)
        assert result.returncode == 0, result.stderr
        said[label] = result.stderr
    write_seqinfo(tmp_path / "seq" / "seqinfo.ini", SeqInfo("seq", 25, 5, 640, 480))
    result = run_cli("track", "--dets", str(dets), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "frame rate 30 fps (assumed: no --fps and no seqinfo.ini" in said["assumed"]
    assert "frame rate 12.5 fps (--fps)" in said["given"]
    assert f"frame rate 25 fps ({tmp_path / 'seq' / 'seqinfo.ini'})" in result.stderr
    assert "frame size unknown: no --size and no imWidth/imHeight" in said["assumed"]
    assert "frame size 320x240 (--size)" in said["given"]
    assert f"frame size 640x480 ({tmp_path / 'seq' / 'seqinfo.ini'})" in result.stderr
    bad = run_cli("track", "--dets", str(dets), "--out", str(out), "--size", "640")
    assert bad.returncode == 2 and "--size: size '640' is not WIDTHxHEIGHT" in bad.stderr
    assert "across gaps of at most 0.5 s (12 frames)" in result.stdout


def test_track_command_on_tud_campus_meets_the_targets(tmp_path):
    folder = shared_path("mot15/TUD-Campus")
    scores = {}
    for label, extra in (("offline", ()), ("online", ("--no-interpolate",))):
        out = tmp_path / f"{label}.txt"
        result = run_cli("track", "--dets", str(folder / "det.txt"), "--out", str(out),
                         "--fps", "25", "--size", "640x480", *extra)
        assert result.returncode == 0, result.stderr
        scores[label], _ = evaluate_mot(folder / "gt.txt", out)
    offline, online = scores["offline"], scores["online"]
    # Issue 18's targets for the online output (as in a live run), and the offline ones.
    assert online.HOTA >= 0.55 and online.MOTA >= 0.65 and online.IDF1 >= 0.77, online
    assert offline.HOTA >= 0.54 and offline.MOTA >= 0.64 and offline.IDF1 >= 0.75, offline


def test_bench_mot_scores_every_variant_on_both_streams(tmp_path):
    out = tmp_path / "mot.json"
    result = run_main("bench", "mot", "--scenes", "2", "--frames", "40", "--size", "320x180",
                      "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["scenes"] == ["synth-1000", "synth-1001-moving"]
    for stream in ("noisy-truth", "model"):
        for variant in ("bytetrack", "botsort-no-cmc", "botsort", "botsort+interpolate"):
            entry = report["results"][stream][variant]
            assert {"all", "static", "moving", "synth-1000"} <= set(entry)
            assert 0.0 < entry["all"]["HOTA"] <= 1.0
    # Degraded truth is tracked well: most identities are kept.
    assert report["results"]["noisy-truth"]["botsort"]["all"]["IDF1"] > 0.6


def test_bench_mot_scene_kinds_render_what_they_name(tmp_path):
    from detstream.stream.bench.mot import SCENE_KINDS, scene_configs, scene_kind, scene_name

    configs = scene_configs(8, 30, (320, 180), 30.0, kinds=tuple(SCENE_KINDS))
    assert [scene_kind(c) for c in configs] == list(SCENE_KINDS)
    assert [scene_name(c) for c in configs[:3]] == ["synth-1000", "synth-1001-moving",
                                                    "synth-1002-crossings"]
    fast, shaky = configs[4], configs[5]
    assert fast.camera_motion and fast.pan_speed == 4.0 and shaky.shake == 5.0
    assert configs[7].objects == 25 and configs[0].objects == 10
    with pytest.raises(UserInputError, match="scene kind 'rain'"):
        scene_configs(2, 30, (320, 180), 30.0, kinds=("static", "rain"))
    out = tmp_path / "mot.json"
    result = run_main("bench", "mot", "--scenes", "2", "--frames", "30", "--size", "320x180",
                      "--model", "none", "--kinds", "crossings,fast-pan", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["scenes"] == ["synth-1000-crossings", "synth-1001-fast-pan"]
    entry = report["results"]["noisy-truth"]["botsort"]
    assert {"all", "static", "moving", "crossings", "fast-pan"} <= set(entry)
    assert "crossings" in result.stdout and "fast-pan" in result.stdout


def test_leave_one_out_scores_each_sequence_with_the_value_chosen_without_it():
    from detstream.stream.bench.tune import leave_one_out

    # Value "a" wins on s1 and s2 by a little, "b" on s3 by a lot: without s3, "a" is chosen
    # (scores 0.5 on s3); without s1 or s2, "b" wins the rest (0.80 on s1, 0.80 on s2).
    table = {"a": {"s1": 0.90, "s2": 0.90, "s3": 0.50},
             "b": {"s1": 0.80, "s2": 0.80, "s3": 0.95}}
    mean, picks = leave_one_out(table)
    assert picks == {"s1": "b", "s2": "b", "s3": "a"}
    assert mean == pytest.approx((0.80 + 0.80 + 0.50) / 3)


def test_bench_tune_scores_candidates_and_replays_what_bench_mot_tracks(tmp_path):
    from detstream.engines.data.mot import read_mot
    from detstream.stream.bench.mot import scene_configs, track_scene
    from detstream.stream.bench.tune import measure_scene, parse_candidates, track_sequence

    # Tracking from the measured detections, motion and cuts equals bench mot's own tracking.
    config = scene_configs(2, 50, (320, 180), 30.0)[1]  # a moving camera
    track_scene(config, None, tmp_path / "direct", {"botsort": ("botsort", {})}, ())
    (sequence,) = measure_scene(config, None, tmp_path / "gt")
    track_sequence(sequence, {}, tmp_path / "replay.txt")
    direct = read_mot(tmp_path / "direct/pred/noisy-truth/botsort" / f"{sequence.scene}.txt")
    replay = read_mot(tmp_path / "replay.txt")
    assert sorted(direct) == sorted(replay)
    for frame in direct:
        np.testing.assert_array_equal(direct[frame].track_ids, replay[frame].track_ids)
        np.testing.assert_allclose(direct[frame].boxes, replay[frame].boxes, atol=0.02)
    assert parse_candidates("lost_seconds=0.5,1") == ("lost_seconds", [0.5, 1.0])
    with pytest.raises(UserInputError, match="NAME one of"):
        parse_candidates("lost=1")
    with pytest.raises(UserInputError, match="match_cost must be from 0 to 1"):
        parse_candidates("match_cost=2")
    out = tmp_path / "tune.json"
    default = ByteTrackConfig().lost_seconds
    result = run_main("bench", "tune", "--param", f"lost_seconds=0.5,{default:g}", "--scenes",
                      "2", "--frames", "30", "--size", "320x180", "--model", "none", "--json",
                      str(out))
    assert result.returncode == 0, result.stderr
    entry = json.loads(out.read_text())["params"]["lost_seconds"]
    assert entry["default"] == default and entry["chosen"] in (0.5, default)
    assert set(entry["per_sequence_HOTA"][str(default)]) == {"noisy-truth/synth-1000",
                                                             "noisy-truth/synth-1001-moving"}
    assert "leave-one-out HOTA" in result.stdout


def test_buffered_iou_keeps_aligned_pairs_whole_and_reaches_displaced_ones():
    from detstream.engines.boxes import iou_matrix
    from detstream.stream.track.matching import buffered_iou_matrix

    track = np.array([[0.0, 0.0, 10.0, 10.0]])
    dets = np.array([[0.0, 0.0, 10.0, 10.0], [12.0, 0.0, 22.0, 10.0]])
    plain = iou_matrix(track, dets)
    assert np.allclose(buffered_iou_matrix(track, dets, np.zeros((1, 2))), plain)
    grown = buffered_iou_matrix(track, dets, np.array([[2.0, 2.0]]))
    # Aligned stays 1; the box 2 px beyond the edge now overlaps: 12 of 14 wide apart → 2/26.
    assert grown[0, 0] == pytest.approx(1.0) and plain[0, 1] == 0.0
    assert grown[0, 1] == pytest.approx(2 * 14 / (2 * 14 * 14 - 2 * 14))


def test_only_tracks_whose_motion_fits_their_detections_coast():
    # Two objects missed on frame 20: one moving smoothly, one whose boxes jump about (a
    # loose detector, erratic motion). Only the first is reported where predicted.
    rng = np.random.default_rng(0)
    # Buffered IoU keeps the jumping box's track (a jump of 18 px on a 20 px box).
    loose_ok = {"coast_seconds": 0.1, "buffer_sigmas": 2.0}
    tracker = make_tracker("bytetrack", fps=30, options=loose_ok)
    for t in range(20):
        jitter = rng.choice([-9.0, 9.0], size=2)
        out = tracker.update(dets(box(50 + 2 * t, 60), box(300 + jitter[0], 200 + jitter[1])))
    smooth, loose = out.track_ids.tolist()
    out = tracker.update(dets())
    assert out.track_ids.tolist() == [smooth] and out.data["coasted"].tolist() == [True]
    everyone = make_tracker("bytetrack", fps=30, options={**loose_ok, "coast_fit": 0})
    rng = np.random.default_rng(0)
    for t in range(20):
        jitter = rng.choice([-9.0, 9.0], size=2)
        everyone.update(dets(box(50 + 2 * t, 60), box(300 + jitter[0], 200 + jitter[1])))
    assert sorted(everyone.update(dets()).track_ids.tolist()) == [smooth, loose]


def test_an_object_passing_behind_another_keeps_its_id():
    # B walks left at 2 px a frame behind a standing A and is unseen while their centres are
    # within 25 px (25 frames). Its lost track passes right over A's tracked box; it must not
    # be ended as a duplicate of A (ByteTrack's rule, duplicate_iou 0.85), or B comes out
    # under a new id.
    def ids_after(options: dict) -> dict[int, float]:
        tracker = make_tracker("bytetrack", 30, options)
        for t in range(80):
            x = 300 - 2 * t
            hidden = abs(x - 200) <= 25 or t < 5
            out = tracker.update(dets(box(200, 200, 40, 80),
                                      *(() if hidden else (box(x, 200, 40, 80),))))
            if t == 20:
                before = out.track_ids.tolist()
        assert before == [1, 2]
        return dict(zip(out.track_ids.tolist(), out.boxes[:, 0].tolist(), strict=True))

    now = ids_after({})
    assert sorted(now) == [1, 2] and now[2] < 150  # B, on A's other side, still B
    assert sorted(ids_after({"duplicate_iou": 0.85})) == [1, 3]


def test_a_track_missed_once_is_taken_up_again_by_a_weak_detection():
    # An object moving 4 px a frame is missed on frame 10 and found only weakly (score 0.2,
    # below high_score) on frame 11: by default its track continues there, detected. With
    # low_lost_frames 0 (ByteTrack's rule) the weak box is left unused. Missed on more frames
    # than low_lost_frames, the weak box after them is not taken up either.
    def run(options: dict, missed: tuple[int, ...]) -> tuple[list[int], list[int]]:
        tracker = make_tracker("bytetrack", 30, {"coast_seconds": 0, **options})
        for t in range(10):
            first = tracker.update(dets(box(50 + 4 * t, 100))).track_ids.tolist()
        for _ in missed:
            tracker.update(dets())
        back = missed[-1] + 1
        return first, tracker.update(dets(box(50 + 4 * back, 100), score=0.2)).track_ids.tolist()

    first, now = run({}, (10,))
    assert first == [1] and now == [1]
    assert run({"low_lost_frames": 0}, (10,))[1] == []
    assert run({"low_lost_frames": 1}, (10, 11))[1] == []
    assert run({}, (10, 11))[1] == [1]  # default low_lost_frames 2: missed twice
    assert run({}, (10, 11, 12))[1] == []


def test_a_track_that_vanishes_at_the_frame_edge_does_not_coast_out_of_it():
    # Two objects walking right at 6 px a frame in a 400 px wide frame, both undetected from
    # frame 30: the one in mid-frame is reported at its guess; the one whose box reaches the
    # right edge has left, and is not, whether the size comes from the frames or is given.
    frame = np.zeros((300, 400, 3), np.uint8)

    def run(tracker, with_frames: bool):
        for t in range(30):
            tracker.update(dets(box(100 + 6 * t, 60), box(220 + 6 * t, 200)),
                           frame if with_frames else None)
        return tracker.update(dets(), frame if with_frames else None)

    for tracker, with_frames in ((make_tracker("bytetrack", 30), True),
                                 (make_tracker("bytetrack", 30, frame_size=(400, 300)), False)):
        out = run(tracker, with_frames)
        assert tracker.frame_size == (400, 300)
        assert out.track_ids.tolist() == [1] and out.data["coasted"].tolist() == [True]
        assert out.boxes[0, 2] < 400
    unknown = make_tracker("bytetrack", 30)
    assert sorted(run(unknown, False).track_ids.tolist()) == [1, 2]  # no size: no rule
    off = make_tracker("bytetrack", 30, {"coast_inside": 0}, frame_size=(400, 300))
    assert sorted(run(off, False).track_ids.tolist()) == [1, 2]


def test_a_coasted_box_is_drawn_as_corners_only():
    from detstream.stream.draw import Annotator, DrawConfig

    image = np.zeros((120, 160, 3), np.uint8)
    seen = dets(box(80, 60, w=80, h=60)).replace(track_ids=np.array([3]))
    guess = seen.replace(data={"coasted": np.array([True])})
    config = DrawConfig(labels=False, trails=0)
    full = Annotator(config).draw(image, seen).any(axis=2)
    corners = Annotator(config).draw(image, guess).any(axis=2)
    # Both mark the corners; only the seen box draws the middle of its edges.
    assert full[30, 40] and corners[30, 40] and full[89, 119] and corners[89, 119]
    assert full[30, 80] and not corners[30, 80] and full[60, 40] and not corners[60, 40]
    assert 0 < corners.sum() < full.sum()


def test_the_strong_threshold_follows_each_detector_s_own_scores():
    from detstream.stream.track.scores import WARMUP, ScoreScale

    rng = np.random.default_rng(0)
    confident = ScoreScale(0.25, floor=0.4, ceiling=0.85, memory=2000, low=0.1)
    modest = ScoreScale(0.25, floor=0.4, ceiling=0.85, memory=2000, low=0.1)
    assert confident.threshold(np.full(WARMUP - 1, 0.99)) == 0.4  # too few yet: the floor
    for _ in range(200):
        confident.threshold(1.0 - rng.exponential(0.05, 10).clip(0, 0.5))  # most near 1
        modest.threshold(rng.uniform(0.3, 0.9, 10))  # a detector that scores 0.3 to 0.9
    # The lower quartile: far up for the first (held at the ceiling), 0.45 for the second.
    assert confident.threshold(np.empty(0)) == 0.85
    assert modest.threshold(np.empty(0)) == pytest.approx(0.45, abs=0.02)
    # The recent past counts most: the confident detector turns modest.
    for _ in range(600):
        confident.threshold(rng.uniform(0.3, 0.9, 10))
    assert confident.threshold(np.empty(0)) == pytest.approx(0.45, abs=0.03)
    assert ScoreScale(0.0, 0.4, 0.85, 2000, 0.1).threshold(np.full(100, 0.99)) == 0.4  # off


def test_a_detector_whose_scores_bunch_up_still_starts_tracks():
    # Every box scores 0.9: the strong threshold reaches its ceiling (0.85), and halfway from
    # there to 1 (0.925) would start nothing; the median score (0.9) caps it.
    tracker = make_tracker("bytetrack", fps=30)
    for _ in range(30):
        tracker.update(dets(box(100, 100), score=0.9))
    out = [tracker.update(dets(box(100, 100), box(300, 100), score=0.9)) for _ in range(3)]
    assert len(out[-1]) == 2 and len(set(out[-1].track_ids.tolist())) == 2
