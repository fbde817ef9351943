"""The demo's server-side parts without a browser: the push source, live reconfiguration of a
running session, the run summary, the allowed-folder checks, the admission line, and the
counting lines and watched areas a page draws (their checks, the counts and events sent to a
live page, an upload's summary), and a live session's event clips (listed to the page, served
only from the visitor's own folder)."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest

from detstream.demo.admission import Admission
from detstream.demo.guard import NAMED_MODELS, check_model, check_stream, names_beside
from detstream.demo.rules import (
    ANALYTICS_EVERY_S,
    EVENTS_SHOWN,
    MAX_RULES,
    AnalyticsFeed,
    change_rules,
    next_name,
    rule_names,
    rules_differ,
    rules_view,
)
from detstream.demo.state import LiveSettings, Registry
from detstream.engines.data.synthetic import SceneConfig, SyntheticScene
from detstream.engines.errors import UserInputError
from detstream.stream.session import BackendCache, RunConfig, build
from detstream.stream.sinks import JsonlSink, SummarySink
from detstream.stream.sources import PushSource, open_source


def frames(n: int, size=(320, 240), seed: int = 1) -> list[np.ndarray]:
    config = SceneConfig(width=size[0], height=size[1], fps=30, frames=n, seed=seed,
                         objects=5, min_size=28)
    return [image for image, _ in SyntheticScene(config)]


# --------------------------------------------------------------------------- PushSource
def test_push_source_keeps_the_newest_frame_and_reports_the_replaced_tags():
    source = PushSource(fps=30)
    image = np.zeros((4, 6, 3), np.uint8)
    assert source.push(image, tag="a") == []
    assert source.push(image, tag="b") == ["a"]
    assert source.push(image, tag="c") == ["b"]
    frame = source.read()
    assert frame.tag == "c" and frame.index == 2 and source.size == (6, 4)
    assert source.stats.frames_read == 3 and source.stats.frames_dropped == 2
    source.end()
    assert source.read() is None
    with pytest.raises(UserInputError, match="after end"):
        source.push(image)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                                 np.zeros((0, 4, 3), np.uint8), b"", "frame.jpg"])
def test_push_source_names_what_it_expected(bad):
    with pytest.raises(UserInputError, match="push\\(\\)"):
        PushSource().push(bad)


def test_push_source_decodes_encoded_frames_only_when_taken():
    source = PushSource()
    image = frames(1)[0]
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    source.push(b"not a jpeg at all", tag=1)
    assert source.push(jpeg, tag=2) == [1]  # replaced before it was ever decoded
    frame = source.read()
    assert frame.tag == 2 and frame.image.shape == image.shape
    assert np.abs(frame.image.astype(int) - image).mean() < 6  # JPEG, not exact
    source.push(b"\xff\xd8 broken", tag=3)
    source.end()
    assert source.read() is None  # the unreadable frame is skipped, not handed on
    assert source.take_unreadable() == [3] and source.take_unreadable() == []


def test_push_source_without_dropping_makes_the_producer_wait():
    source = PushSource(drop=False, capacity=2)
    image = np.zeros((2, 2, 3), np.uint8)
    source.push(image, tag=0)
    source.push(image, tag=1)
    pushed = threading.Event()
    threading.Thread(target=lambda: (source.push(image, tag=2), pushed.set()),
                     daemon=True).start()
    assert not pushed.wait(0.3)  # full: the third push waits
    assert source.read().tag == 0
    assert pushed.wait(2.0)
    assert [source.read().tag, source.read().tag] == [1, 2]
    assert source.stats.frames_dropped == 0


def test_open_source_push_uri():
    source = open_source("push://?fps=25&paced=0")
    assert isinstance(source, PushSource) and source.fps == 25 and source.live
    assert source.paced is False
    with pytest.raises(UserInputError, match="fps"):
        open_source("push://?fps=zero")


# --------------------------------------------------------------------------- sessions
def test_pushed_frames_run_through_the_pipeline_and_keep_their_tags():
    results = []
    session = build(RunConfig(source="push://?fps=30", tracker="bytetrack"),
                    on_packet=results.append)
    pipeline = session.pipeline
    pipeline.start()
    images = frames(12)
    for k, image in enumerate(images):
        pipeline.source.push(image, tag=1000 + k)
        time.sleep(0.12)  # slower than the model here: nothing is dropped
    pipeline.source.end()
    assert pipeline.wait(30)
    pipeline.close()
    assert pipeline.error is None
    tags = [packet.tag for packet in results]
    assert tags == sorted(tags) and set(tags) <= {1000 + k for k in range(12)}
    assert len(tags) + pipeline.source.stats.frames_dropped == 12
    assert all(packet.annotated is not None for packet in results)
    assert sum(len(packet.detections) for packet in results) > 0
    assert any((packet.detections.track_ids >= 0).any() for packet in results)


def test_reconfigure_applies_from_the_next_frame_and_refuses_fixed_fields(tmp_path):
    results = []
    backends = BackendCache()
    config = RunConfig(source="push://?fps=30", tracker="botsort", conf=0.25)
    session = build(config, on_packet=results.append, backends=backends)
    pipeline = session.pipeline
    pipeline.start()
    images = frames(40, seed=4)

    def feed(batch):
        start = len(results)
        for image in batch:
            pipeline.source.push(image)
            deadline = time.monotonic() + 10
            while len(results) == start and time.monotonic() < deadline:
                time.sleep(0.01)
            start = len(results)

    # The camera-rate schedule (detect-every 0) sends each frame on at once and applies its
    # detections when they come, a few frames later: feed until tracks are confirmed.
    fed = 0
    while fed < 30 and not (results and (results[-1].detections.track_ids >= 0).any()):
        feed(images[fed:fed + 1])
        fed += 1
    before = results[-1]
    assert (before.detections.track_ids >= 0).any()
    session.reconfigure(RunConfig(source=config.source, tracker=None, conf=0.99,
                                  classes=("circle",), detect_every=2))
    assert len(backends) == 1  # the model was not reopened for new thresholds
    feed(images[30:35])
    pipeline.source.end()
    assert pipeline.wait(30)
    pipeline.close()
    after = results[-5:]
    assert all((p.detections.track_ids == -1).all() for p in after)  # no tracker now
    assert all((p.detections.scores > 0.99).all() for p in after if p.found is not None)
    assert all(set(p.detections.labels) <= {"circle"} for p in after)
    # Every second frame taken, counted from the start; the first frame after the change
    # may follow the old schedule (the capture stage chose it before it waited for the frame).
    detect = [p.detect for p in after]
    assert detect[1:] in ([True, False, True, False], [False, True, False, True])
    assert detect[0] != detect[1] or not detect[0]
    with pytest.raises(UserInputError, match="source cannot change"):
        session.reconfigure(RunConfig(source="clip.mp4"))
    with pytest.raises(UserInputError, match="not a class"):
        session.reconfigure(RunConfig(source=config.source, classes=("cat",)))
    assert session.config.conf == 0.99  # a refused change left the session as it was


def test_backend_cache_opens_each_model_once():
    cache = BackendCache(size=2)
    a = cache.open(RunConfig(model="default", imgsz=320))
    assert cache.open(RunConfig(model="default", imgsz=320, conf=0.9)) is a
    b = cache.open(RunConfig(model="default", imgsz=256))
    assert b is not a and len(cache) == 2


def test_summary_matches_the_json_lines(tmp_path):
    path = tmp_path / "out.jsonl"
    summary = SummarySink()
    session = build(RunConfig(source="synthetic://?seed=2&size=320x192&frames=40&objects=6"
                                     "&min_size=24", tracker="bytetrack"),
                    extra_sinks=[JsonlSink(path), summary])
    session.pipeline.run()
    report = summary.report()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert report["frames"] == len(lines) == 40
    boxes: dict[str, int] = {}
    tracks: dict[int, list[int]] = {}
    for line in lines:
        for det in line["detections"]:
            boxes[det["class"]] = boxes.get(det["class"], 0) + 1
            if det["track_id"] >= 0:
                tracks.setdefault(det["track_id"], []).append(line["frame"])
    assert report["boxes"] == dict(sorted(boxes.items())) and sum(boxes.values()) > 0
    assert report["track_count"] == len(tracks) > 0
    longest = max(tracks.items(), key=lambda item: (len(item[1]), -item[0]))
    assert report["longest"][0]["id"] == longest[0]
    assert report["longest"][0]["frames"] == len(longest[1])


# --------------------------------------------------------------------------- stage times
class SlowBackend:
    """A real backend behind a fixed wait, so that inference is slower than the camera: the
    track stage holds frames for their detections and detections come back late."""

    def __init__(self, inner, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds
        self.name, self.spec, self.device = inner.name, inner.spec, inner.device
        self.dtype, self.max_batch = inner.dtype, inner.max_batch

    def infer(self, batch):
        time.sleep(self.seconds)
        return self.inner.infer(batch)

    def describe(self) -> str:
        return "slow " + self.inner.describe()


def test_the_webcam_gets_the_camera_rate_schedule_and_its_stage_table_tells_work_from_waits():
    """The page's webcam session (the source and settings LiveHub gives build()) runs the
    adaptive schedule; with inference at 200 ms and frames held up to 150 ms for their
    detections, the page's stage table shows the detector's preprocess and infer (on no
    packet in this mode), a track time without the hold, and the hold as a wait."""
    from dataclasses import replace

    from detstream.demo.live import WEBCAM_SOURCE, ResultMaker, session_config
    from detstream.engines.predict import Predictor

    headers = []
    make_result = ResultMaker()
    box = []

    def on_packet(packet):
        message = make_result(packet, box[0].metrics, {})
        length = int.from_bytes(message[4:8], "little")
        headers.append(json.loads(message[8:8 + length]))

    session = build(session_config(LiveSettings(tracker="bytetrack"), "webcam", WEBCAM_SOURCE),
                    on_packet=on_packet)
    pipeline = session.pipeline
    box.append(pipeline)
    assert pipeline.source.live and pipeline.source.drop and not pipeline.source.paced
    assert pipeline.options.detect_every == 0 and pipeline.adaptive()
    pipeline.predictor = Predictor(SlowBackend(pipeline.predictor.backend, 0.2))
    pipeline.options = replace(pipeline.options, hold_ms=150.0)
    pipeline.start()
    for image in frames(50, seed=6):  # 30 fps for 1.7 s, as a camera would
        pipeline.source.push(cv2.imencode(".jpg", image)[1].tobytes())
        time.sleep(1 / 30)
    pipeline.source.end()
    assert pipeline.wait(30)
    pipeline.close()
    assert pipeline.error is None and len(headers) >= 30
    metrics = pipeline.metrics
    # About one frame in six is held, for over 100 ms: counted as tracking, the hold put
    # the track stage's p95 above 100 ms.
    track = metrics.stage_ms["track"]
    assert track.percentile(95) < 100, (track.percentile(95), track.largest)
    assert "inference" in metrics.waits_ms and metrics.waits_ms["inference"].largest > 100
    last = headers[-1]
    assert "infer" not in last["timings"] and "preprocess" not in last["timings"]
    assert set(last["stages"]) >= {"preprocess", "infer", "track", "draw", "jpeg"}
    assert last["stages"]["infer"]["ms"] >= 190  # the detector's own time, from the metrics
    assert last["stages"]["infer"]["per_s"] < last["stages"]["track"]["per_s"]
    assert last["stages"]["track"]["ms"] < 100
    assert "capture" not in last["stages"]  # a live source's capture is a wait
    assert set(last["waits"]) == {"inference", "next frame"}
    assert list(last["stages"])[:3] == ["preprocess", "infer", "track"]  # pipeline order


def test_recent_stages_are_means_over_the_window_with_waits_apart():
    from detstream.stream.pipeline.metrics import RunMetrics
    from detstream.stream.pipeline.stage_times import RecentStages

    now = [0.0]
    metrics = RunMetrics()
    recent = RecentStages(window_s=2.0, live=True, mark_every_s=0.5, clock=lambda: now[0])
    for second in range(6):  # track takes 10 ms a frame for 3 s, then 2 ms
        for _ in range(30):
            metrics.add_packet({"capture": 30.0, "track": 10.0 if second < 3 else 2.0}, 40.0,
                               now[0])
        metrics.add_stage("infer", 80.0)
        metrics.add_wait("inference", 25.0)
        now[0] += 1.0
        table = recent(metrics)
    assert table["stages"]["track"] == {"ms": 2.0, "per_s": 30.0}  # the last 2 s only
    assert table["stages"]["infer"] == {"ms": 80.0, "per_s": 1.0}
    assert table["waits"] == {"inference": {"ms": 25.0, "per_s": 1.0},
                              "next frame": {"ms": 30.0, "per_s": 30.0}}
    assert list(table["stages"]) == ["infer", "track"]
    now[0] += 5.0
    assert recent(metrics) == {"stages": {}, "waits": {}}  # nothing done lately: no rows


def test_the_run_table_shows_each_stage_s_work_and_the_waits_apart():
    from detstream.stream.pipeline.stage_times import stage_table

    stage = lambda ms: {"mean_ms": ms, "p95_ms": ms, "fps": 1000 / ms}  # noqa: E731
    report = {"frames_in": 300,
              "stages": {"capture": stage(33.0), "track": stage(6.0), "output": stage(1.0),
                         "preprocess": stage(7.0), "infer": stage(80.0)},
              "waits": {"inference": {"mean_ms": 40.0, "p95_ms": 48.0}},
              "detection": {"schedule": "as often as inference allows", "frames_detected": 90}}
    live = stage_table(report, live=True).splitlines()
    names = [line.split()[0] for line in live[1:6]]
    assert names == ["preprocess", "infer", "track", "output", "detector:"]
    waits = live[live.index("waits (not work, not in the stage times above):") + 1:]
    assert [line.split()[0] for line in waits] == ["inference", "next"]
    assert "waited for a frame" in waits[0] and "next frame" in waits[1]
    on_file = stage_table(report, live=False)
    assert on_file.splitlines()[1].startswith("capture")  # a file's capture is decoding


# --------------------------------------------------------------------------- guard
@pytest.fixture
def folders(tmp_path):
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    (allowed / "sub" / "clip.mp4").write_bytes(b"x")
    (allowed / "m.onnx").write_bytes(b"x")
    (outside / "secret.mp4").write_bytes(b"x")
    (outside / "m.onnx").write_bytes(b"x")
    os.symlink(outside / "secret.mp4", allowed / "link.mp4")
    os.symlink(outside, allowed / "escape")
    return allowed, outside


def test_stream_paths_must_stay_inside_the_allowed_folders(folders):
    allowed, outside = folders
    assert check_stream(str(allowed / "sub" / "clip.mp4"), [allowed]).endswith("clip.mp4")
    for bad in (str(outside / "secret.mp4"), str(allowed / ".." / "outside" / "secret.mp4"),
                str(allowed / "link.mp4"), str(allowed / "escape" / "secret.mp4"),
                "/etc/passwd"):
        with pytest.raises(UserInputError, match="refused"):
            check_stream(bad, [allowed])
    with pytest.raises(UserInputError, match="allows no folders"):
        check_stream(str(allowed / "sub" / "clip.mp4"), [])
    for uri in ("rtsp://127.0.0.1:8554/cam", "http://127.0.0.1/x.mjpg", "synthetic://?seed=1"):
        assert check_stream(uri, []) == uri
    for bad in ("file:///etc/passwd", "0", "/dev/video0", "gopher://x"):
        with pytest.raises(UserInputError):
            check_stream(bad, [allowed])


def test_models_are_named_or_onnx_files_inside_the_allowed_folders(folders):
    allowed, outside = folders
    assert check_model("default", []) == "default"
    assert check_model(str(allowed / "m.onnx"), [allowed]).endswith("m.onnx")
    for bad in (str(outside / "m.onnx"), str(allowed / "escape" / "m.onnx"),
                str(allowed / "sub" / "clip.mp4"), "/etc/passwd", "../../m.onnx"):
        with pytest.raises(UserInputError, match="refused"):
            check_model(bad, [allowed])


def test_names_file_is_found_beside_an_onnx_without_names():
    from tests.conftest import shared_path

    model = shared_path("models/yolox_nano/yolox_nano.onnx")
    assert names_beside(str(model)).endswith("coco_classes.txt")
    assert names_beside("default") is None


# --------------------------------------------------------------------------- admission
def test_admission_is_first_come_first_served_per_lane():
    line = Admission(limit=1)
    a, b, c = line.join("cpu"), line.join("cpu"), line.join("cpu")
    other = line.join("gpu")
    assert [line.poll(a), line.poll(b), line.poll(c), line.poll(other)] == [0, 1, 2, 0]
    assert line.running() == 2 and line.waiting() == 2
    line.leave(b)  # gave up while waiting
    assert line.poll(c) == 1
    line.leave(a)
    line.leave(a)  # twice is harmless
    assert line.poll(c) == 0 and line.running() == 2 and line.waiting() == 0


def test_registry_versions_settings_and_forgets_closed_pages(tmp_path):
    registry = Registry(tmp_path, LiveSettings())
    settings, version = registry.settings("page-1")
    assert settings == LiveSettings() and version == 0
    assert registry.update("page-1", LiveSettings(conf=0.5)) == 1
    assert registry.update("page-1", LiveSettings(conf=0.5)) == 1  # unchanged
    work = registry.workdir("page-1")
    (work / "upload.mp4").write_bytes(b"x")
    info = registry.open("page-1", "webcam")
    registry.forget("page-1")
    assert info.stop.is_set() and not work.exists()
    registry.close(info)
    assert registry.status()["sessions"] == []


def test_live_websocket_refuses_pages_of_other_sites():
    from types import SimpleNamespace

    from detstream.demo.live import same_origin

    def ws(**headers):
        return SimpleNamespace(headers=headers)

    assert same_origin(ws(host="127.0.0.1:7860", origin="http://127.0.0.1:7860"))
    assert same_origin(ws(host="127.0.0.1:7860"))  # a script, not a browser page
    assert not same_origin(ws(host="127.0.0.1:7860", origin="https://evil.example"))
    assert not same_origin(ws(host="127.0.0.1:7860", origin="http://127.0.0.1:9999"))


def test_the_page_takes_the_same_model_names_as_the_command_line():
    assert check_model("yolox-nano", []) == "yolox-nano"
    assert check_model("YOLOX_S", []) == "yolox-s"
    assert "yolox-l" in NAMED_MODELS and NAMED_MODELS[0] == "default"
    with pytest.raises(UserInputError, match="default, yolox-nano"):
        check_model("yolox-huge", [])


# ------------------------------------------------------------------- lines and areas
def test_rules_drawn_on_the_page_are_named_and_become_the_run_options(tmp_path):
    registry = Registry(tmp_path, LiveSettings())
    add = {"action": "add"}
    settings, said = change_rules(registry, "p", {**add, "kind": "line",
                                                  "points": [[10, 120], [310, 120]]})
    assert said == "line1 added"
    settings, said = change_rules(registry, "p", {**add, "kind": "area", "points": [
        [60, 40], [260, 40], [260, 200], [60, 200]]})
    settings, said = change_rules(registry, "p", {**add, "kind": "line",
                                                  "points": [[5.25, 6], [90, 7]]})
    assert said == "line2 added" and registry.settings("p")[1] == 3
    assert rules_view(settings) == {
        "lines": [{"name": "line1", "points": [[10.0, 120.0], [310.0, 120.0]]},
                  {"name": "line2", "points": [[5.2, 6.0], [90.0, 7.0]]}],
        "areas": [{"name": "area1", "points": [[60.0, 40.0], [260.0, 40.0], [260.0, 200.0],
                                               [60.0, 200.0]]}],
        "dwell": None}
    # The page's settings are the run's options: the command line's own specs.
    config = settings.run_config("push://")
    assert [spec.name for spec in config.lines] == ["line1", "line2"]
    assert config.areas[0].points[2] == (260.0, 200.0)
    assert config == RunConfig(source="push://", draw=config.draw,
                               lines=("line1:10,120,310,120", "line2:5.2,6,90,7"),
                               areas=("area1:60,40 260,40 260,200 60,200",))
    assert next_name("line", ["line1", "area7", "line9"]) == "line10"
    # What makes a live run start again: other rules, or another threshold for its areas.
    assert rules_differ(config, replace(config, lines=config.lines[:1]))
    assert rules_differ(config, replace(config, dwell=5.0))
    assert not rules_differ(replace(config, areas=None),
                            replace(config, areas=None, dwell=5.0))
    # A settings change beside the rules keeps them; clearing keeps the loitering threshold.
    registry.amend("p", lambda now: LiveSettings.from_controls(now.config, conf=0.5,
                                                               dwell=3.0))
    assert rule_names(registry.settings("p")[0]) == ["line1", "line2", "area1"]
    settings, said = change_rules(registry, "p", {"action": "clear"})
    assert said == "rules cleared" and settings.lines is None and settings.areas is None
    assert settings.dwell == 3.0 and settings.conf == 0.5


@pytest.mark.parametrize(("body", "message"), [
    ({"action": "add", "kind": "line", "points": [[1, 1], [1, 1]]},
     "lines: line 'line2' starts and ends at the same point"),
    ({"action": "add", "kind": "line", "points": [[1, 1]]},
     "lines: line 'line2' needs exactly two points, got 1"),
    ({"action": "add", "kind": "area", "points": [[0, 0], [10, 0]]},
     "areas: area 'area1' needs three or more corners, got 2"),
    ({"action": "add", "kind": "area", "points": [[0, 0], [10, 0], [20, 0]]},
     "areas: area 'area1': the polygon has no area"),
    ({"action": "add", "kind": "line", "points": [[0, 0], [1e9, 5]]},
     "is outside the frame"),
    ({"action": "add", "kind": "line", "points": "0,0 5,5"}, "points must be [[x, y], ...]"),
    ({"action": "add", "kind": "line", "points": [[0, True], [5, 5]]},
     "points must be [[x, y], ...]"),
    ({"action": "add", "kind": "circle", "points": [[0, 0]]}, "a rule is a line or an area"),
    ({"action": "add", "kind": "area", "points": [[i, i % 2] for i in range(30)]},
     "at most 24 corners"),
    ({"action": "remove"}, "unknown rule action 'remove'; use add or clear"),
    (["add"], "expected a JSON object"),
    (None, "expected a JSON object"),
])
def test_a_bad_rule_is_one_clear_message_and_changes_nothing(tmp_path, body, message):
    registry = Registry(tmp_path, LiveSettings())
    change_rules(registry, "p", {"action": "add", "kind": "line", "points": [[0, 5], [9, 5]]})
    before = registry.settings("p")
    with pytest.raises(UserInputError) as refused:
        change_rules(registry, "p", body)
    assert message in str(refused.value)
    assert registry.settings("p") == before


def test_a_page_takes_at_most_a_dozen_rules(tmp_path):
    registry = Registry(tmp_path, LiveSettings())
    for k in range(MAX_RULES):
        change_rules(registry, "p", {"action": "add", "kind": "line",
                                     "points": [[0, k], [50, k]]})
    with pytest.raises(UserInputError, match=f"at most {MAX_RULES} lines and areas"):
        change_rules(registry, "p", {"action": "add", "kind": "line",
                                     "points": [[0, 0], [50, 9]]})


def test_the_live_page_gets_every_rule_event_and_the_counts_when_they_change(tmp_path):
    """A real run with a line and an area: the results' headers carry every rule event of
    the JSON Lines once, and the counts only when they changed, at most four times a second
    of the (simulated) clock unless an event comes with them."""
    path = tmp_path / "out.jsonl"
    now = [0.0]
    feed = AnalyticsFeed(clock=lambda: now[0])
    headers: list[tuple[float, dict]] = []
    config = RunConfig(source="synthetic://?seed=3&size=320x240&frames=90&objects=8"
                              "&min_size=24", tracker="bytetrack", lines=("mid:0,120,320,120",),
                       areas=("box:60,50 260,50 260,190 60,190",))
    box: list = []

    def on_packet(packet):
        now[0] += 1 / 30  # the page's clock: one frame interval a result
        feed.take(packet)
        headers.append((now[0], feed.header(box[0].pipeline.options.rules)))

    session = build(config, on_packet=on_packet, extra_sinks=[JsonlSink(path)])
    box.append(session)
    session.pipeline.run()
    written = [event for line in path.read_text().splitlines()
               for event in json.loads(line).get("events", []) if "rule" in event]
    sent = [event for _, header in headers for event in header.get("rule_events", [])]
    assert sent == written and {e["event"] for e in sent} >= {"line_crossed", "zone_entered"}
    counts = [(t, h["analytics"], "rule_events" in h) for t, h in headers if "analytics" in h]
    assert counts[0][0] == headers[0][0]  # the first result tells the page the counters
    assert all(a[1] != b[1] for a, b in zip(counts, counts[1:], strict=False))
    assert all(b[0] - a[0] >= ANALYTICS_EVERY_S - 1e-9 or b[2]
               for a, b in zip(counts, counts[1:], strict=False))
    assert len(counts) < len(headers) / 2  # not with every frame
    last = counts[-1][1]
    crossed = [e["direction"] for e in written if e["event"] == "line_crossed"]
    assert last["lines"] == [{"name": "mid", "in": crossed.count("in"),
                              "out": crossed.count("out"),
                              "classes": last["lines"][0]["classes"]}]
    assert sum(i + o for i, o in last["lines"][0]["classes"].values()) == len(crossed)
    area = last["areas"][0]
    assert area["entries"] == sum(e["event"] == "zone_entered" for e in written)
    assert area["exits"] == sum(e["event"] == "zone_left" for e in written)


def test_the_upload_summary_shows_the_counts_and_the_last_events(tmp_path):
    from detstream.demo.upload import CLIPS_OFFERED, process_video
    from detstream.engines.data.synthetic.sequence import write_sequence

    write_sequence(tmp_path / "clip", SceneConfig(width=320, height=180, fps=24, frames=96,
                                                  seed=3, objects=8, min_size=24))
    registry = Registry(tmp_path / "work", LiveSettings())
    for line in ([[0, 90], [320, 90]], [[160, 0], [160, 180]]):
        change_rules(registry, "p", {"action": "add", "kind": "line", "points": line})
    change_rules(registry, "p", {"action": "add", "kind": "area",
                                 "points": [[40, 30], [280, 30], [280, 150], [40, 150]]})
    updates = list(process_video(str(tmp_path / "clip" / "video.mp4"), "p", registry,
                                 Admission(1), BackendCache(), [], 10**9))
    final = updates[-1]
    assert "done: 96 frames" in final.status
    jsonl = next(f for f in final.files if f.endswith(".jsonl"))
    events = [e for line in open(jsonl, encoding="utf-8")
              for e in json.loads(line).get("events", []) if "rule" in e]
    assert len(events) > EVENTS_SHOWN  # enough to show only the last ones
    summary = final.summary
    for name in ("line1", "line2"):
        crossed = [e["direction"] for e in events
                   if e["event"] == "line_crossed" and e["rule"] == name]
        assert f"| {name} | {crossed.count('in')} | {crossed.count('out')} |" in summary
    entries = sum(e["event"] == "zone_entered" for e in events)
    exits = sum(e["event"] == "zone_left" for e in events)
    assert f"| area1 | {entries} | {exits} | " in summary
    assert f"the last {EVENTS_SHOWN} of {len(events)}" in summary
    rows = [row for row in summary.splitlines() if row.startswith("| 0:")]
    assert len(rows) == EVENTS_SHOWN
    newest = events[-1]
    assert rows[0].split(" | ")[1:4] == [newest["event"], newest["rule"],
                                         f"#{newest['track_id']} {newest['class']}"]
    # each event's clip is offered with the results (the first CLIPS_OFFERED of them)
    clips = [f for f in final.files if f.endswith(".mp4")]
    stats = json.loads(open(next(f for f in final.files if f.endswith("-stats.json")),
                            encoding="utf-8").read())
    assert clips == [c["path"] for c in stats["clips"]["clips"]][:CLIPS_OFFERED]
    assert len(clips) == min(CLIPS_OFFERED, stats["clips"]["written"]) > 0
    assert sum(len(c["events"]) for c in stats["clips"]["clips"]) == len(events)
    assert "**Event clips:**" in summary


# --------------------------------------------------------------------------- event clips
def _mp4_box(data: bytes) -> bytes:
    """The type of an MP4's first box (``ftyp`` for a real one)."""
    return data[4:8]


def test_a_live_session_s_clips_reach_the_page_and_only_its_own_are_served(tmp_path,
                                                                          monkeypatch):
    """A real run with a line writes its clips into the session's folder; ClipFeed sends each
    finished clip once (reading the clip sink's report only when a clip has finished), keeps
    the newest on disk, and the download route serves them to their own page only."""
    from urllib.parse import quote

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from detstream.demo.app import _routes
    from detstream.demo.clips import (
        CLIP_POST_S,
        CLIP_PRE_S,
        ClipFeed,
        clip_path,
        live_clip_folder,
    )
    from detstream.demo.live import session_config
    from detstream.stream.sinks.clips import ClipSink

    registry = Registry(tmp_path / "work", LiveSettings(tracker="bytetrack"))
    change_rules(registry, "page-a", {"action": "add", "kind": "line",
                                      "points": [[0, 120], [320, 120]]})
    settings, _ = registry.settings("page-a")
    folder = live_clip_folder(registry.workdir("page-a"), 7)
    source = "synthetic://?seed=3&size=320x240&frames=150&objects=8&min_size=24"
    config = session_config(settings, "webcam", source, folder)
    assert (config.clips, config.clip_pre, config.clip_post) == (folder, CLIP_PRE_S,
                                                                 CLIP_POST_S)
    no_rules = session_config(LiveSettings(), "webcam", source, folder)
    assert no_rules.clips is None  # no rules, no events: no encoder on every frame

    reports = [0]
    real_report = ClipSink.report

    def counted(self):
        reports[0] += 1
        return real_report(self)

    monkeypatch.setattr(ClipSink, "report", counted)
    feed = ClipFeed("page-a", 7, kept=3)
    sent: list[dict] = []
    box: list = []

    def on_packet(packet):
        feed.take(box[0].pipeline.sinks)
        sent.extend(feed.header().get("clips", []))

    session = build(config, on_packet=on_packet)
    box.append(session)
    session.pipeline.run()
    during = len(sent)
    feed.take(session.pipeline.sinks)  # what the close finished
    sent.extend(feed.header().get("clips", []))
    report = real_report(next(s for s in session.pipeline.sinks if isinstance(s, ClipSink)))
    assert report["written"] >= 4 and during >= 1, (report["written"], during)
    assert reports[0] <= report["written"]  # read when a clip finished, not every frame
    assert [c["name"] for c in sent] == [os.path.basename(c["path"]) for c in report["clips"]]
    assert feed.header() == {}  # each clip is sent once
    first = sent[0]
    assert first["url"] == f"detstream/clips/page-a/7/{first['name']}"
    assert first["kinds"] == ["line_crossed"] and first["rules"] == ["line1"]
    assert first["events"] == len(report["clips"][0]["events"])
    assert first["track"] == report["clips"][0]["events"][0]["track_id"]
    assert first["seconds"] > CLIP_POST_S
    # Only the newest `kept` files stay on disk.
    assert sorted(p.name for p in folder.iterdir()) == sorted(c["name"] for c in sent[-3:])

    # Files that a careless join would reach: beside the folder, elsewhere on the disk, in
    # another visitor's clip folder, and a link inside the folder leading out.
    newest = sent[-1]["name"]
    secret = b"\0\0\0\x18ftypisom secret"
    (registry.workdir("page-a") / "beside.mp4").write_bytes(secret)
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(secret)
    other = live_clip_folder(registry.workdir("page-b"), 7)
    other.mkdir()
    (other / "theirs.mp4").write_bytes(secret)
    os.symlink(outside, folder / "escape.mp4")
    assert clip_path(registry, "page-a", "7", newest) == (folder / newest).resolve()
    for client, session_id, name in [
            ("page-a", "7", "../beside.mp4"), ("page-a", "7", str(outside)),
            ("page-a", "7", "../../page-b/live-clips-7/theirs.mp4"),
            ("page-a", "7", "theirs.mp4"), ("page-b", "7", newest),
            ("page-a", "7", "escape.mp4"), ("page-a", "7", sent[0]["name"]),  # deleted
            ("page-a", "8", newest), ("page-a", "-7", newest), ("page-a", "7", ""),
            ("stranger", "7", newest)]:
        assert clip_path(registry, client, session_id, name) is None, (client, name)
    assert clip_path(registry, "page-b", "7", "theirs.mp4") is not None  # theirs, to them
    assert registry.existing_workdir("stranger") is None  # asking made no folder

    app = FastAPI()
    _routes(app, None, registry, Admission(1))
    http = TestClient(app)
    reply = http.get(f"/detstream/clips/page-a/7/{newest}")
    assert reply.status_code == 200 and reply.headers["content-type"] == "video/mp4"
    assert len(reply.content) > 1000 and _mp4_box(reply.content) == b"ftyp"
    assert reply.content == (folder / newest).read_bytes()
    for url in ("/detstream/clips/page-a/7/..%2Fbeside.mp4",
                "/detstream/clips/page-a/7/" + quote(str(outside), safe=""),
                "/detstream/clips/page-a/7/..%2F..%2Fpage-b%2Flive-clips-7%2Ftheirs.mp4",
                "/detstream/clips/page-a/7/escape.mp4",
                f"/detstream/clips/page-b/7/{newest}", f"/detstream/clips/page-a/8/{newest}",
                f"/detstream/clips/stranger/7/{newest}"):
        assert http.get(url).status_code == 404, url
