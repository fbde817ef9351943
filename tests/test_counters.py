"""Counters never wrap: track ids, frame indices and timestamps stay exact past 2**31 frames
and after days of wall-clock time. The arithmetic is tested directly, by starting the counters
just below the limits, not by running that long."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detstream.engines.data.mot import MotWriter, read_mot
from detstream.engines.spec import Detections
from detstream.stream.draw import Annotator, DrawConfig
from detstream.stream.pipeline.metrics import RunMetrics
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.files import JsonlSink, MotSink
from detstream.stream.sinks.summary import SummarySink
from detstream.stream.track import make_tracker
from detstream.stream.track.interpolate import GapFill, interpolate_tracks

BIG = 2**31  # where int32 wraps
FPS = 30.0


def boxes_at(*xs: float) -> Detections:
    """Well separated 20x40 boxes with left edges ``xs``, score 0.9, class 0."""
    boxes = np.array([[x, 50, x + 20, 90] for x in xs], np.float32).reshape(-1, 4)
    return Detections(boxes=boxes, scores=np.full(len(xs), 0.9, np.float32),
                      class_ids=np.zeros(len(xs), np.int32), class_names=("thing",))


@pytest.fixture
def tracked() -> list[Detections]:
    """Two frames of a tracker whose id counter stood at 2**31 - 2: ids run across 2**31."""
    tracker = make_tracker("bytetrack", FPS)
    tracker.next_id = BIG - 2
    first = tracker.update(boxes_at(0, 100, 200))  # the first frame's tracks count at once
    second = tracker.update(boxes_at(0, 100, 200, 300, 400))
    third = tracker.update(boxes_at(0, 100, 200, 300, 400))  # the newcomers confirmed
    return [first, second, third]


def test_tracker_ids_cross_2_31_without_wrapping(tracked):
    first, _, third = tracked
    assert first.track_ids.dtype == np.int64
    assert first.track_ids.tolist() == [BIG - 2, BIG - 1, BIG]
    assert sorted(third.track_ids.tolist()) == [BIG - 2, BIG - 1, BIG, BIG + 1, BIG + 2]
    # What used to happen: the tracker's int64 ids cast to int32 on the way out.
    assert np.int64(BIG).astype(np.int32) < 0


def test_detections_keep_64_bit_ids_through_selection_and_merge():
    ids = np.array([BIG + 5, 2**62, -1], np.int64)
    d = boxes_at(0, 100, 200).replace(track_ids=ids)
    assert d.track_ids.dtype == np.int64 and d.track_ids.tolist() == ids.tolist()
    assert d[d.track_ids >= 0].track_ids.tolist() == [BIG + 5, 2**62]
    assert Detections.merge([d, d[[0]]]).track_ids.tolist() == [*ids.tolist(), BIG + 5]
    assert Detections.empty().track_ids.dtype == np.int64


def test_mot_files_carry_big_frames_and_ids(tracked, tmp_path):
    frame = BIG + 5
    with MotWriter(tmp_path / "t.txt") as writer:
        writer.write(frame, tracked[2])
    text = (tmp_path / "t.txt").read_text()
    assert text.splitlines()[0].startswith(f"{frame},{BIG - 2},")
    back = read_mot(tmp_path / "t.txt")
    assert list(back) == [frame]
    assert sorted(back[frame].track_ids.tolist()) == sorted(tracked[2].track_ids.tolist())


def _packet(index: int, detections: Detections) -> FramePacket:
    return FramePacket(stream_id=0, index=index, pts=index / FPS, captured=0.0,
                       image=np.zeros((120, 480, 3), np.uint8), detections=detections)


def test_sinks_write_frame_indices_timestamps_and_ids_past_2_31(tracked, tmp_path):
    index = BIG + 5  # frame 2**31 + 6 in 1-based MOT numbering
    packet = _packet(index, tracked[2])
    json_sink, mot_sink, summary = JsonlSink(tmp_path / "d.jsonl"), MotSink(tmp_path / "m.txt"), \
        SummarySink()
    for sink in (json_sink, mot_sink, summary):
        sink.write(packet)
        sink.close()
    record = json.loads((tmp_path / "d.jsonl").read_text())
    assert record["frame"] == index
    assert round(record["time"] * FPS) == index  # 2.3 years of pts, exact to the frame
    assert abs(record["time"] - index / FPS) < 1e-6
    assert sorted(d["track_id"] for d in record["detections"]) == [BIG - 2, BIG - 1, BIG,
                                                                   BIG + 1, BIG + 2]
    assert list(read_mot(tmp_path / "m.txt")) == [index + 1]
    report = summary.report()
    assert report["track_count"] == 5
    assert {t["id"] for t in report["longest"]} == {BIG - 2, BIG - 1, BIG, BIG + 1, BIG + 2}
    assert all(t["first"] == t["last"] == index for t in report["longest"])


def test_drawing_and_interpolation_take_big_ids(tracked):
    image = np.zeros((120, 480, 3), np.uint8)
    annotator = Annotator(DrawConfig(trails=4))
    for k, dets in enumerate(tracked):
        drawn = annotator.draw(image, dets, overlay=f"frame {BIG + k}")
        assert drawn.shape == image.shape and drawn.any()
    one = tracked[2][tracked[2].track_ids == BIG + 1]
    moved = one.replace(boxes=one.boxes + np.float32(30))
    filled, added = interpolate_tracks({BIG + 5: one, BIG + 8: moved}, 30, GapFill(max_jump=np.inf))
    assert added == 2 and list(filled) == [BIG + 5, BIG + 6, BIG + 7, BIG + 8]
    assert filled[BIG + 6].track_ids.tolist() == [BIG + 1]
    assert np.allclose(filled[BIG + 7].boxes, one.boxes + 20)


def test_tracker_frame_counter_past_2_31_still_ages_lost_tracks():
    tracker = make_tracker("bytetrack", FPS, {"coast_seconds": 0})  # lost: not reported
    tracker.frame = BIG + 5  # a stream 2.3 years old at 30 fps...
    tracker.first_frame = BIG + 6  # ...whose tracks start afresh on the next frame
    ids = [tracker.update(boxes_at(100)).track_ids.tolist() for _ in range(3)]
    assert ids[-1] == [1]
    for _ in range(tracker.max_lost):  # lost, but still waiting to be found again
        assert not len(tracker.update(boxes_at()))
    assert len(tracker) == 1
    tracker.update(boxes_at())  # one frame more: the track ends
    assert len(tracker) == 0 and tracker.frame == BIG + 5 + 3 + tracker.max_lost + 1


def test_latency_and_rate_stay_exact_after_ten_days_of_clock():
    """``time.perf_counter()`` counts from boot: ten days in, differences of its float64 values
    still resolve microseconds."""
    metrics = RunMetrics()
    boot = 10 * 86400.0
    for k in range(60):
        captured = boot + k / FPS
        done = captured + 0.040
        metrics.add_packet({"infer": 25.0}, (done - captured) * 1000.0, done)
    assert abs(metrics.recent_fps() - FPS) < 1e-6
    assert abs(metrics.latency_ms.mean - 40.0) < 1e-6
    report = metrics.report(frames_in=60, frames_dropped=0)
    assert abs(report["latency_ms"]["p50"] - 40.0) <= 40.0 * 0.005


def test_demo_results_keep_the_frame_index_and_ids(tracked):
    """The page's frame id is a uint32 that both sides wrap alike (it only tells the few
    frames in flight apart); the pipeline's own index and the track ids are exact."""
    import struct

    from detstream.demo.live import result_message

    packet = _packet(BIG + 5, tracked[2])
    packet.tag = 2**32 + 7
    message = result_message(packet, {})
    seq, length = struct.unpack_from("<II", message)
    header = json.loads(message[8:8 + length])
    assert seq == 7 and header["index"] == BIG + 5
    assert sorted(box[4] for box in header["boxes"]) == [BIG - 2, BIG - 1, BIG, BIG + 1,
                                                        BIG + 2]
