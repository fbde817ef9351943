"""Resumable runs: a run killed mid-way and resumed writes every frame exactly once.

The progress journal, starting a file source at a frame, tracker ids above the ones written,
and ``detstream run --resume`` end to end (a real process killed with SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from detstream.engines.data.mot import read_mot
from detstream.engines.data.synthetic.config import SceneConfig
from detstream.engines.data.synthetic.sequence import write_sequence
from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections
from detstream.stream.multisession import MultiSession
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.session import RunConfig, build, journal_path, resumed_video_path
from detstream.stream.sinks import JsonlSink, MotSink
from detstream.stream.sinks.journal import (
    ProgressJournal,
    ResumePoint,
    prepare_resume,
    read_journal,
)
from detstream.stream.sources import open_source
from detstream.stream.track import make_tracker
from tests.conftest import REPO, run_cli, shared_path

#: A scene the default model finds several tracks in at imgsz 160 (about 100 frames/s here).
SCENE = "synthetic://?seed=3&size=320x192&frames={frames}&objects=6&min_size=40"
IMGSZ = 160


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _mot_rows(path: Path) -> list[tuple[int, int]]:
    return [(int(r[0]), int(r[1])) for r in
            (line.split(",") for line in path.read_text().splitlines())]


def _run(config: RunConfig) -> dict:
    session = build(config)
    report = session.pipeline.run()
    return report | {"resumed": session.resumed}


def _packet(index: int, ids: list[int]) -> FramePacket:
    n = len(ids)
    boxes = np.array([[10.0 * k, 5.0, 10.0 * k + 8.0, 20.0] for k in range(n)], np.float32)
    dets = Detections(boxes=boxes.reshape(n, 4), scores=np.full(n, 0.9, np.float32),
                      class_ids=np.zeros(n, np.int32), track_ids=np.asarray(ids, np.int64),
                      class_names=("thing",))
    return FramePacket(0, index, index / 30.0, 0.0, np.zeros((4, 4, 3), np.uint8),
                       detections=dets)


# --------------------------------------------------------------------------- the journal
def test_journal_records_whole_frames_and_prepare_resume_cuts_the_torn_tail(tmp_path):
    json_path, mot_path, journal = tmp_path / "a.jsonl", tmp_path / "a.txt", tmp_path / "j"
    assert read_journal(journal) is None  # absent: a first run
    sinks = [JsonlSink(json_path), MotSink(mot_path)]
    sinks.append(ProgressJournal(journal, sinks))
    for index, ids in enumerate([[1, 2], [2, 7], [3]]):
        for sink in sinks:
            sink.write(_packet(index, ids))
    sizes = {str(json_path.resolve()): json_path.stat().st_size,
             str(mot_path.resolve()): mot_path.stat().st_size}
    assert read_journal(journal) == ResumePoint(3, sizes, 7)  # flushed before it recorded
    for sink in sinks:
        sink.close()
    # A process killed inside a frame: half a line in each output.
    with json_path.open("a") as file:
        file.write('{"frame":3,"time":0.1,"detec')
    with mot_path.open("a") as file:
        file.write("4,9,1.5,")
    point = prepare_resume(journal)
    assert point == ResumePoint(3, sizes, 7)
    assert [r["frame"] for r in _records(json_path)] == [0, 1, 2]
    assert _mot_rows(mot_path) == [(1, 1), (1, 2), (2, 2), (2, 7), (3, 3)]
    # A resumed journal keeps the ids already written and records shorter lines over longer
    # ones: readers take the first line only.
    resumed = ProgressJournal(journal, [JsonlSink(json_path, append=True)], resume=point)
    resumed.write(_packet(3, []))
    resumed.close()
    assert journal.read_bytes().count(b"\n") == 2  # the old record's tail is still there
    again = read_journal(journal)
    assert again is not None and again.next_frame == 4 and again.max_track_id == 7


def test_journal_refuses_missing_short_or_foreign_files(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("x" * 10)
    journal = tmp_path / "out.jsonl.progress"
    journal.write_text(json.dumps({"frame": 4, "sizes": {str(out): 20}, "max_track_id": 2})
                       + "\n")
    with pytest.raises(UserInputError, match=r"out\.jsonl holds 10 bytes.*recorded 20"):
        prepare_resume(journal)
    out.unlink()
    with pytest.raises(UserInputError, match=r"out\.jsonl .*is missing.*without --resume"):
        prepare_resume(journal)
    journal.write_text("not json\n")
    with pytest.raises(UserInputError, match="not a detstream progress journal"):
        read_journal(journal)
    journal.write_bytes(b"")
    assert prepare_resume(journal) is None  # empty: nothing was written yet


def test_tracker_numbers_from_first_id_also_after_reset():
    tracker = make_tracker("bytetrack", 30.0, first_id=8)
    dets = _packet(0, [-1, -1]).detections
    assert set(tracker.update(dets).track_ids.tolist()) == {8, 9}
    tracker.reset()
    assert min(tracker.update(dets).track_ids.tolist()) == 8


def test_resumed_video_name_takes_the_next_free_number(tmp_path):
    clip = tmp_path / "clip.mp4"
    assert resumed_video_path(clip) == tmp_path / "clip.resumed-1.mp4"
    (tmp_path / "clip.resumed-1.mp4").write_bytes(b"")
    assert resumed_video_path(clip) == tmp_path / "clip.resumed-2.mp4"
    config = RunConfig(save_mot=tmp_path / "t.txt", output=clip)
    assert journal_path(config) == tmp_path / "t.txt.progress"
    assert journal_path(RunConfig()) is None


# --------------------------------------------------------------------------- start_frame
def _frames(source) -> list:
    with source:
        return list(source)


def _assert_same_frames(late: list, full: list, start: int) -> None:
    assert [f.index for f in late] == [f.index for f in full[start:]]
    assert [f.pts for f in late] == [f.pts for f in full[start:]]
    for a, b in zip(late, full[start:], strict=True):
        assert np.array_equal(a.image, b.image)


def test_start_frame_on_a_synthetic_scene_and_a_live_one():
    uri = "synthetic://?seed=5&size=160x96&frames=12"
    full = _frames(open_source(uri, live=False))
    source = open_source(uri, live=False, start_frame=7)
    late = _frames(source)
    _assert_same_frames(late, full, 7)
    assert late[0].index == 7 and late[0].pts == pytest.approx(7 / 30)
    stats = source.stats
    assert (stats.frames_read, stats.frames_before_start, stats.frames_skipped) == (5, 7, 0)
    # A live source cannot skip ahead: it numbers its frames from the start frame instead.
    live = open_source("synthetic://?seed=5&size=160x96&frames=3&fps=240&live=1",
                       drop=False, start_frame=40)
    assert [f.index for f in _frames(live)] == [40, 41, 42]


def test_start_frame_on_a_video_file_and_an_image_folder(tmp_path):
    write_sequence(tmp_path / "seq", SceneConfig(width=160, height=96, frames=14, seed=2))
    video = str(tmp_path / "seq" / "video.mp4")
    _assert_same_frames(_frames(open_source(video, start_frame=9)),
                        _frames(open_source(video)), 9)
    folder = tmp_path / "images"
    folder.mkdir()
    for k, frame in enumerate(_frames(open_source(video))[:6]):
        cv2.imwrite(str(folder / f"{k:03d}.png"), frame.image)
    (folder / "001.png").write_bytes(b"not an image")  # unreadable: keeps its place
    full = _frames(open_source(str(folder)))
    assert [f.index for f in full] == [0, 2, 3, 4, 5]
    source = open_source(str(folder), start_frame=3)
    late = _frames(source)
    assert [f.index for f in late] == [3, 4, 5]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(late, full[2:], strict=True))
    assert source.stats.frames_before_start == 3 and source.stats.frames_skipped == 0


def test_start_frame_on_a_real_video():
    video = str(shared_path("videos/bikes.mp4"))
    full = []
    with open_source(video) as source:
        while len(full) < 14 and (frame := source.read()) is not None:
            full.append(frame)
    with open_source(video, start_frame=10) as source:
        late = [source.read() for _ in range(4)]
    _assert_same_frames(late, full, 10)


# --------------------------------------------------------------------------- build(resume)
def test_resume_through_the_api_continues_every_frame_exactly(tmp_path):
    """Without a tracker the outputs are the detector's, frame by frame: a run stopped
    after 15 frames and resumed must equal an uninterrupted run byte for byte."""
    uri = SCENE.format(frames=30)
    common = dict(source=uri, imgsz=IMGSZ, live=False, tracker=None)
    _run(RunConfig(**common, save_json=tmp_path / "ref.jsonl"))
    out = tmp_path / "out.jsonl"
    journal = tmp_path / "out.jsonl.progress"
    first = RunConfig(**common, save_json=out, output=tmp_path / "clip.mp4", journal=journal,
                      max_frames=15)
    assert _run(first)["frames_out"] == 15
    report = _run(replace(first, max_frames=None, resume=True))
    assert report["resumed"].next_frame == 15 and report["frames_out"] == 15
    assert report["source"]["frames_before_start"] == 15
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert read_journal(journal).next_frame == 30
    assert (tmp_path / "clip.resumed-1.mp4").stat().st_size > 0  # the video goes on aside
    # A resume asking for an output the interrupted run did not write is refused.
    with pytest.raises(UserInputError, match="--save-mot .* was not written by the run"):
        build(replace(first, resume=True,
                           save_mot=tmp_path / "new.txt"))


def test_resume_without_a_journal_runs_from_the_start(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("stale line from some earlier run\n")
    report = _run(RunConfig(source=SCENE.format(frames=8), imgsz=IMGSZ, live=False,
                            tracker="bytetrack", save_json=out, resume=True,
                            journal=tmp_path / "out.jsonl.progress"))
    assert report["resumed"] is None
    assert [r["frame"] for r in _records(out)] == list(range(8))
    assert read_journal(tmp_path / "out.jsonl.progress").next_frame == 8


def test_each_stream_keeps_its_own_journal(tmp_path):
    uris = [SCENE.format(frames=12), SCENE.format(frames=12).replace("seed=3", "seed=4")]
    config = RunConfig(imgsz=IMGSZ, live=False, tracker="bytetrack",
                       save_json=tmp_path / "d_{stream}.jsonl", max_frames=5)
    config = replace(config, journal=journal_path(config))
    for resume in (False, True):
        group = MultiSession(replace(config, resume=resume), uris)
        group.start()
        group.wait(60)
        group.close()
        config = replace(config, max_frames=None)
    for stream in (0, 1):
        assert read_journal(tmp_path / f"d_{stream}.jsonl.progress").next_frame == 12
        assert [r["frame"] for r in _records(tmp_path / f"d_{stream}.jsonl")] == list(range(12))


# --------------------------------------------------------------------------- the command
def test_resume_without_file_outputs_is_one_clear_line():
    result = run_cli("run", "--resume", "--stats-json", "stats.json")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--resume continues the files of an interrupted run" in result.stderr


def test_killed_run_resumes_with_every_frame_exactly_once(tmp_path):
    frames = 150
    uri = SCENE.format(frames=frames)
    out, mot = tmp_path / "out.jsonl", tmp_path / "out.txt"
    journal = tmp_path / "out.jsonl.progress"
    args = ["run", "--source", uri, "--imgsz", str(IMGSZ), "--no-live", "--tracker",
            "bytetrack", "--save-json", str(out), "--save-mot", str(mot)]
    process = subprocess.Popen([sys.executable, "-m", "detstream", *args], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            point = read_journal(journal) if journal.exists() else None
            if point is not None and point.next_frame >= 30:
                break
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
    point = read_journal(journal)
    assert process.returncode == -signal.SIGKILL
    assert point is not None and 30 <= point.next_frame < frames, point
    # Whatever the kill left, plus a torn half line: the resume must drop both.
    with out.open("a") as file:
        file.write('{"frame":999,"time":')
    with mot.open("a") as file:
        file.write("999,1,")

    result = run_cli(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert f"resuming from frame {point.next_frame}" in result.stderr

    records = _records(out)  # every line parses: the torn one is gone
    assert [r["frame"] for r in records] == list(range(frames))
    reference = tmp_path / "ref.jsonl"
    _run(RunConfig(source=uri, imgsz=IMGSZ, live=False, tracker="bytetrack",
                   save_json=reference))
    expected = _records(reference)
    resume_at = point.next_frame
    assert records[:resume_at] == expected[:resume_at]  # ids included: the same run
    assert [r["time"] for r in records] == [r["time"] for r in expected]

    rows = _mot_rows(mot)
    assert len(rows) == len(set(rows))  # no (frame, id) twice
    assert {f for f, _ in rows} <= set(range(1, frames + 1))
    before = [i for f, i in rows if f <= resume_at]
    after = [i for f, i in rows if f > resume_at]
    assert before and after and min(after) > max(before)
    assert len(read_mot(mot)) > frames // 2
    json_ids_after = [d["track_id"] for r in records[resume_at:] for d in r["detections"]]
    assert min(json_ids_after) > point.max_track_id
