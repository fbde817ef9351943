"""Several sources through one model and one batched inference service: each stream gets
exactly its own frames and tracks, a dying or silent stream leaves the others alone, streams
are added and removed while running, and ``detstream run`` takes several sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from detstream.engines.data.synthetic import SceneConfig
from detstream.engines.data.synthetic.sequence import write_sequence
from detstream.engines.errors import UserInputError
from detstream.stream.multisession import MultiSession, read_sources_file, stream_path
from detstream.stream.session import RunConfig, build
from detstream.stream.sinks.tiled import grid_shape
from tests.conftest import run_main
from tests.helpers.mjpeg_server import MjpegServer
from tests.helpers.tiny import decoded_frames

CONFIG = RunConfig(model="default", imgsz=320, backend="onnxruntime", conf=0.2)
LENGTHS = (36, 24, 30)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three different synthetic H.264 clips of different lengths."""
    paths = []
    for seed, frames in zip((21, 22, 23), LENGTHS, strict=True):
        out = tmp_path_factory.mktemp(f"clip{seed}")
        write_sequence(out, SceneConfig(width=416, height=234, fps=25, frames=frames,
                                        seed=seed, objects=5, min_size=36))
        paths.append(out / "video.mp4")
    return paths


def _collect(packets: dict, packet) -> None:
    dets = packet.detections
    packets.setdefault(packet.stream_id, []).append(
        (packet.index, dets.boxes.copy(), dets.class_ids.copy(), dets.track_ids.copy()))


def _alone(clip) -> list[tuple]:
    packets: dict = {}
    session = build(RunConfig(**{**CONFIG.__dict__, "source": str(clip), "max_batch": 3}),
                    on_packet=lambda p: _collect(packets, p))
    session.pipeline.run()
    return packets[0]


def test_each_stream_gets_exactly_its_own_frames_and_tracks(clips):
    packets: dict = {}
    group = MultiSession(CONFIG, [str(c) for c in clips], batch=3, collect_ms=50,
                         on_packet=lambda p: _collect(packets, p))
    group.start()
    assert group.wait(120)
    report = group.close()
    assert [s["frames_out"] for s in report["streams"]] == list(LENGTHS)
    assert report["frames_out"] == sum(LENGTHS)
    assert report["inference"]["largest_batch"] > 1  # frames of several streams per call
    for stream, clip in enumerate(clips):
        mine = packets[stream]
        assert [p[0] for p in mine] == list(range(LENGTHS[stream]))
        alone = _alone(clip)
        ids = 0
        for together, single in zip(mine, alone, strict=True):
            # batched calls run other kernels: boxes equal to float tolerance, and the
            # identities exactly (no track leaks in from another stream)
            np.testing.assert_allclose(together[1], single[1], atol=0.05)
            np.testing.assert_array_equal(together[2], single[2])
            np.testing.assert_array_equal(together[3], single[3])
            ids += int((together[3] >= 0).sum())
        assert ids > LENGTHS[stream]


def test_a_dying_server_ends_only_its_own_stream(clips):
    server = MjpegServer(fps=25)
    server.start()
    config = RunConfig(**{**CONFIG.__dict__, "stall_timeout": 0.5})
    group = MultiSession(config, [server.url, str(clips[0]), str(clips[1])], batch=3)
    group.start()
    time.sleep(1.0)
    server.stop()  # the camera goes away mid-run
    files = [e for e in group.streams.values() if e.id > 0]
    deadline = time.perf_counter() + 120
    while any(not e.pipeline.wait(0) for e in files) and time.perf_counter() < deadline:
        time.sleep(0.1)
    camera = group.streams[0].pipeline.source
    while (camera.connected and camera.stats.reconnects + camera.stats.stalls == 0
           and camera.stats.error is None and time.perf_counter() < deadline):
        time.sleep(0.1)  # the camera's stream notices the server is gone
    assert not camera.connected or camera.stats.stalls or camera.stats.reconnects
    report = group.close()
    camera, first, second = report["streams"]
    assert first["frames_out"] == LENGTHS[0] and second["frames_out"] == LENGTHS[1]
    assert first["error"] is None and second["error"] is None
    assert camera["frames_out"] > 0
    source = camera["source"]
    assert source["reconnects"] + source["stalls"] >= 1 or source["error"]


def test_a_silent_stream_does_not_hold_the_others_batches(clips):
    config = RunConfig(**{**CONFIG.__dict__})
    group = MultiSession(config, [str(clips[0]), "push://?fps=25"], batch=2, collect_ms=300)
    group.start()
    files = group.streams[0]
    assert files.pipeline.wait(120)
    report = group.close()
    # the push source never got a frame: after its first second it stops counting, so the
    # file stream's calls run alone instead of waiting 300 ms for a partner each time
    assert report["streams"][0]["frames_out"] == LENGTHS[0]
    assert report["streams"][1]["frames_out"] == 0
    assert report["inference"]["largest_batch"] == 1
    assert report["streams"][0]["fps"] > 1000 / 300


def test_streams_are_added_and_removed_while_running(clips):
    server = MjpegServer(fps=25)
    server.start()
    try:
        group = MultiSession(CONFIG, [server.url], batch=2)
        group.start()
        time.sleep(0.5)
        added = group.add(str(clips[2]))
        assert group.streams[added].pipeline.wait(120)
        removed = group.remove(0)
        assert removed["frames_out"] > 0 and removed["error"] is None
        report = group.close()
    finally:
        server.stop()
    assert [s["stream"] for s in report["streams"]] == [0, added]
    assert report["streams"][1]["frames_out"] == LENGTHS[2]


def test_output_names_need_the_stream_field_for_several_sources(tmp_path):
    assert stream_path(tmp_path / "out_{stream}.mp4", 2, 3, "--output") == tmp_path / "out_2.mp4"
    assert stream_path(tmp_path / "out.mp4", 0, 1, "--output") == tmp_path / "out.mp4"
    with pytest.raises(UserInputError, match=r"put \{stream\} in the name, e.g. .*out_\{stream\}"
                                             r"\.mp4"):
        stream_path(tmp_path / "out.mp4", 0, 2, "--output")
    listing = tmp_path / "cameras.txt"
    listing.write_text("# cameras\na.mp4\n\n  rtsp://cam/1  \n")
    assert read_sources_file(listing) == ["a.mp4", "rtsp://cam/1"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(UserInputError, match="lists no source"):
        read_sources_file(tmp_path / "empty.txt")


def test_detstream_run_with_several_sources(clips, tmp_path):
    listing = tmp_path / "more.txt"
    listing.write_text(f"{clips[2]}\n")
    result = run_main("run", "--source", str(clips[0]), "--source", str(clips[1]),
                      "--sources", str(listing), "--imgsz", "320",
                      "--output", str(tmp_path / "out_{stream}.mp4"),
                      "--save-json", str(tmp_path / "dets_{stream}.jsonl"),
                      "--stats-json", str(tmp_path / "stats.json"))
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert [s["uri"] for s in stats["streams"]] == [str(c) for c in clips]
    for stream, frames in enumerate(LENGTHS):
        assert decoded_frames(tmp_path / f"out_{stream}.mp4") == frames
        lines = (tmp_path / f"dets_{stream}.jsonl").read_text().splitlines()
        assert len(lines) == frames
        entry = stats["streams"][stream]
        assert entry["frames_in"] == entry["frames_out"] == frames
        assert entry["fps"] > 0 and entry["latency_ms"]["p95"] > 0
    assert "3 streams" in result.stdout


def test_several_sources_and_one_output_name_is_one_clear_error(clips, tmp_path):
    result = run_main("run", "--source", str(clips[0]), "--source", str(clips[1]),
                      "--output", str(tmp_path / "out.mp4"))
    assert result.returncode == 2
    assert "put {stream} in the name" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_tiled_output_holds_every_stream_in_one_grid(clips, tmp_path):
    tiled = tmp_path / "grid.mp4"
    group = MultiSession(CONFIG, [str(c) for c in clips], tiled_output=tiled)
    # the grid shows drawn frames, though no stream has a video output of its own
    assert all(e.pipeline.annotator is not None for e in group.streams.values())
    group.start()
    assert group.wait(120)
    group.close()
    with av.open(str(tiled)) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    # stream 0 paces the grid while it runs: one grid per frame of it, at least
    assert len(frames) >= LENGTHS[0]
    assert frames[0].shape == (2 * 360, 2 * 640, 3)  # three streams: a 2 x 2 grid
    brightness = np.array([[frame[r * 360:(r + 1) * 360, c * 640:(c + 1) * 640].mean()
                            for r in (0, 1) for c in (0, 1)] for frame in frames])
    assert (brightness[:, :3].max(axis=0) > 20).all()  # every stream's tile shows pictures
    assert brightness[:, 3].max() < 5  # the spare tile stays black


def test_grid_shape_is_the_most_square():
    assert [grid_shape(n) for n in (1, 2, 3, 4, 5, 9, 10)] == [
        (1, 1), (1, 2), (2, 2), (2, 2), (2, 3), (3, 3), (3, 4)]


@pytest.mark.parametrize("sources", [1, 2])
def test_show_without_a_display_is_one_clear_error(tmp_path, sources):
    """OpenCV's GUI would abort the process on the first frame; refused before any work."""
    args = [sys.executable, "-m", "detstream", "run", "--show"]
    for seed in range(sources):
        args += ["--source", f"synthetic://?seed={seed}&size=320x192&frames=5"]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--show needs a display" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_the_shared_service_yields_to_live_streams_at_the_camera_s_rate(clips):
    """Every stream live and adaptive (each frame out at the camera's rate): the shared
    inference workers run below the frames' path, as one live pipeline's own do; a file among
    the streams keeps them at normal priority."""
    from detstream.stream.pipeline.threads import STAGE_NICENESS

    cameras = [f"synthetic://?seed={seed}&size=160x120&fps=30&live=1" for seed in (1, 2)]
    for sources, niceness in ((cameras, STAGE_NICENESS), ([cameras[0], str(clips[0])], 0)):
        group = MultiSession(CONFIG, sources, batch=2)
        try:
            assert group.service.niceness == niceness
            assert all(e.pipeline.service is group.service for e in group.streams.values())
        finally:
            group.close()
