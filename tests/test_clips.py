"""Event clips (issue 37): H.264 packets cut on keyframes into MP4s holding ``pre`` seconds
before each rule event and ``post`` after, read back frame by frame."""

from __future__ import annotations

import re

import av
import numpy as np
import pytest

from detstream.engines.data.packets import ClipFile, PacketEncoder
from detstream.stream.analytics import RuleEvent
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.clips import ClipSink, clip_name

FPS = 10.0
SIZE = (96, 64)  # width, height
STEP = 3  # grey level per frame: a decoded frame's mean says which frame it was


def picture(index: int) -> np.ndarray:
    """A flat grey frame whose level tells its index (after lossy coding, within 1)."""
    return np.full((SIZE[1], SIZE[0], 3), 8 + STEP * index, np.uint8)


def frames_of(path) -> list[int]:
    """The index of every frame a clip plays, decoded from its grey level."""
    with av.open(str(path)) as container:
        return [round((frame.to_ndarray(format="gray").mean() - 8) / STEP)
                for frame in container.decode(video=0)]


def event(frame: int, track_id: int = 7, rule: str = "door",
          kind: str = "line_crossed") -> RuleEvent:
    return RuleEvent(kind=kind, rule=rule, track_id=track_id, class_id=0, class_name="person",
                     frame=frame, time=frame / FPS,
                     direction="in" if kind == "line_crossed" else None)


def feed(sink: ClipSink, frames: int, events: dict[int, list[RuleEvent]]) -> None:
    for index in range(frames):
        packet = FramePacket(stream_id=0, index=index, pts=index / FPS, captured=0.0,
                             image=picture(index))
        packet.annotated = packet.image
        packet.events = list(events.get(index, []))
        sink.write(packet)


def test_a_clip_cut_at_a_keyframe_plays_every_frame_it_holds(tmp_path):
    encoder = PacketEncoder(*SIZE, FPS, keyframe_s=1.0)
    packets = [p for k in range(40) for p in encoder.encode(picture(k), k / FPS)]
    packets += encoder.close()
    assert len(packets) == 40 and packets[0].keyframe
    keyframes = [k for k, p in enumerate(packets) if p.keyframe]
    assert all(b - a <= FPS for a, b in zip(keyframes, keyframes[1:], strict=False))
    start = keyframes[2]
    clip = ClipFile(tmp_path / "cut.mp4", encoder)
    for packet in packets[start:]:
        clip.write(packet)
    clip.close()
    assert frames_of(tmp_path / "cut.mp4") == list(range(start, 40))
    assert clip.seconds == pytest.approx((39 - start) / FPS)
    with pytest.raises(ValueError, match="keyframe"):
        ClipFile(tmp_path / "bad.mp4", encoder).write(packets[start + 1])


def test_an_event_s_clip_runs_from_pre_seconds_before_to_post_after(tmp_path):
    sink = ClipSink(tmp_path, FPS, pre_s=1.0, post_s=1.5)
    feed(sink, 60, {30: [event(30)]})
    sink.close()
    report = sink.report()
    assert report["written"] == 1 and report["skipped"] == 0
    (clip,) = report["clips"]
    played = frames_of(clip["path"])
    # From the newest keyframe at least 1 s (10 frames) before the event: at most one
    # keyframe interval earlier still; to 1.5 s after it.
    assert 10 <= played[0] <= 20
    assert played == list(range(played[0], 46))
    assert clip["frames"] == len(played)
    assert [e["frame"] for e in clip["events"]] == [30]


def test_a_later_event_of_the_same_track_extends_its_clip_another_track_gets_its_own(tmp_path):
    sink = ClipSink(tmp_path, FPS, pre_s=0.5, post_s=1.0)
    feed(sink, 60, {20: [event(20, track_id=1)],
                    25: [event(25, track_id=1, rule="hall", kind="zone_entered"),
                         event(25, track_id=2)]})
    sink.close()
    clips = {c["events"][0]["track_id"]: c for c in sink.report()["clips"]}
    assert sorted(clips) == [1, 2]
    assert [e["event"] for e in clips[1]["events"]] == ["line_crossed", "zone_entered"]
    assert frames_of(clips[1]["path"])[-1] == 35  # 1 s after the second event
    assert frames_of(clips[2]["path"])[-1] == 35


def test_a_clip_open_when_the_run_ends_is_finalised_and_plays(tmp_path):
    sink = ClipSink(tmp_path, FPS, pre_s=0.5, post_s=30.0)
    feed(sink, 40, {35: [event(35)]})
    sink.close()
    (clip,) = sink.report()["clips"]
    played = frames_of(clip["path"])
    assert played[-1] == 39 and played == list(range(played[0], 40))


def test_the_run_start_bounds_the_seconds_before(tmp_path):
    sink = ClipSink(tmp_path, FPS, pre_s=5.0, post_s=0.5)
    feed(sink, 20, {3: [event(3)]})
    sink.close()
    (clip,) = sink.report()["clips"]
    assert frames_of(clip["path"]) == list(range(0, 9))


def test_clips_are_named_by_time_rule_kind_and_track():
    crossing = event(1234, track_id=12, rule="front door")
    assert clip_name(crossing, 0, live=False, wall=0.0) == \
        "t000123.40s_front-door_line_crossed_track12.mp4"
    live = clip_name(crossing, 2, live=True, wall=1_700_000_000.25)
    assert re.fullmatch(r"s2_\d{8}-\d{6}\.250_front-door_line_crossed_track12\.mp4", live)


def test_an_event_dated_before_its_frame_gets_its_seconds_before_from_then(tmp_path):
    """A line crossed while the track was hidden is reported on its return, dated back: the
    clip's seconds before count from the moment it crossed."""
    sink = ClipSink(tmp_path, FPS, pre_s=1.0, post_s=0.5)
    late = RuleEvent(kind="line_crossed", rule="door", track_id=3, class_id=0,
                     class_name="person", frame=42, time=4.2, direction="in")
    feed(sink, 70, {60: [late]})  # reported at frame 60, 1.8 s after it happened
    sink.close()
    (clip,) = sink.report()["clips"]
    played = frames_of(clip["path"])
    assert 22 <= played[0] <= 32 and played[-1] == 65
