"""Sources that survive faults, against real servers on 127.0.0.1 and real codecs: a network
stream that stalls (connection open, nothing sent), an RTSP camera (Debian's GStreamer RTSP
server) killed and restarted or frozen, a video file with garbage in its middle, an unreadable
image in a folder."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from detstream.engines.data.synthetic import SceneConfig, SyntheticScene
from detstream.engines.data.video import VideoWriter
from detstream.stream.sources import open_source
from tests.conftest import run_cli, run_main
from tests.helpers import rtsp_server
from tests.helpers.mjpeg_server import MjpegServer

MODEL = ("--model", "default", "--backend", "torch", "--imgsz", "160", "--tracker", "bytetrack")


class Watch:
    """Reads a source in a thread, keeping each frame's arrival time and the log lines."""

    def __init__(self, uri: str, stall_timeout: float = 5.0) -> None:
        self.start = time.perf_counter()
        self.lines: list[tuple[float, str]] = []
        self.arrivals: list[float] = []
        self.source = open_source(uri, stall_timeout=stall_timeout,
                                  log=lambda line: self.lines.append((self.now(), line)))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return time.perf_counter() - self.start

    def _read(self) -> None:
        while (frame := self.source.read()) is not None:
            self.arrivals.append(frame.captured - self.start)

    def frames_after(self, moment: float) -> int:
        return sum(t > moment for t in self.arrivals)

    def logged(self, text: str) -> list[float]:
        return [t for t, line in self.lines if text in line]

    def wait(self, condition, timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        self.source.close()
        self._thread.join(timeout=10)


def test_a_stalled_mjpeg_stream_is_noticed_reconnected_and_counted():
    server = MjpegServer(fps=25)
    server.start()
    watch = Watch(server.url, stall_timeout=1.0)
    try:
        assert watch.wait(lambda: len(watch.arrivals) >= 10, 10)
        stalled_at = watch.now()
        server.stall()  # the socket stays open, nothing more is sent
        assert watch.wait(lambda: watch.logged("stalled"), 10), watch.lines
        noticed = watch.logged("stalled")[0] - stalled_at
        time.sleep(1.0)  # still silent: a new connection gets headers, then nothing
        assert watch.source.stats.reconnects == 0
        resumed_at = watch.now()
        server.resume()
        assert watch.wait(lambda: watch.frames_after(resumed_at) >= 10, 15), watch.lines
    finally:
        watch.close()
        server.stop()
    stats = watch.source.stats
    assert 0.7 <= noticed <= 1.0 + 1.5, watch.lines  # about the stall timeout after silence
    assert stats.stalls == 1 and stats.reconnects == 1, watch.lines
    # The outage runs from the silence to the reconnection: the second of notice, the second
    # of waiting, then the reconnection.
    assert 2.0 <= stats.outage_seconds <= watch.now() - stalled_at


def test_a_stream_sending_only_undecodable_frames_is_a_stall():
    server = MjpegServer(fps=25)
    good = list(server.jpegs)
    server.start()
    watch = Watch(server.url, stall_timeout=1.0)
    try:
        assert watch.wait(lambda: len(watch.arrivals) >= 10, 10)
        broken_at = watch.now()
        rng = np.random.default_rng(0)
        server.jpegs[:] = [rng.bytes(len(jpeg)) for jpeg in good]  # data flows, no picture
        assert watch.wait(lambda: watch.logged("stalled: no frame"), 10), watch.lines
        noticed = watch.logged("stalled: no frame")[0] - broken_at
        server.jpegs[:] = good
        mended_at = watch.now()
        assert watch.wait(lambda: watch.frames_after(mended_at) >= 10, 15), watch.lines
    finally:
        watch.close()
        server.stop()
    stats = watch.source.stats
    assert 0.7 <= noticed <= 1.0 + 1.5, watch.lines
    assert stats.stalls >= 1 and stats.reconnects >= 1 and stats.frames_skipped >= 10


# ------------------------------------------------------------------------ a real RTSP camera
@pytest.fixture(scope="module")
def rtsp_clip(tmp_path_factory) -> Path:
    reason = rtsp_server.unavailable()
    if reason:
        pytest.skip(f"no RTSP server: {reason}")
    return rtsp_server.write_clip(tmp_path_factory.mktemp("rtsp") / "clip.mp4", seconds=60)


@pytest.fixture
def camera(rtsp_clip):
    with rtsp_server.RtspServer(rtsp_clip) as server:
        yield server


def test_the_live_source_reads_an_rtsp_camera(camera):
    source = open_source(camera.url)
    try:
        assert source.live and source.fps == 25
        frames = [source.read() for _ in range(10)]
    finally:
        source.close()
    assert all(f.image.shape == (180, 320, 3) for f in frames)
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert source.size == (320, 180) and source.stats.reconnects == 0


def test_an_rtsp_camera_killed_and_restarted_is_reconnected(camera):
    watch = Watch(camera.url, stall_timeout=2.0)
    try:
        assert watch.wait(lambda: len(watch.arrivals) >= 10, 15)
        killed_at = watch.now()
        camera.kill()  # its connections close
        time.sleep(1.0)
        camera.start()
        restarted_at = watch.now()
        assert watch.wait(lambda: watch.frames_after(restarted_at) >= 10, 15), watch.lines
    finally:
        watch.close()
    stats = watch.source.stats
    assert stats.reconnects == 1 and stats.stalls == 0, watch.lines  # a loss, not a stall
    assert 1.0 <= stats.outage_seconds <= watch.now() - killed_at
    assert watch.logged("connection lost") and watch.logged("reconnected")


def test_a_frozen_rtsp_camera_is_a_stall_noticed_within_the_timeout(camera):
    watch = Watch(camera.url, stall_timeout=1.5)
    try:
        assert watch.wait(lambda: len(watch.arrivals) >= 10, 15)
        frozen_at = watch.now()
        camera.pause()  # SIGSTOP: the TCP connection stays open, nothing is sent
        assert watch.wait(lambda: watch.logged("stalled"), 10), watch.lines
        noticed = watch.logged("stalled")[0] - frozen_at
        camera.resume()
        resumed_at = watch.now()
        assert watch.wait(lambda: watch.frames_after(resumed_at) >= 10, 15), watch.lines
    finally:
        watch.close()
    # FFmpeg's RTSP demuxer gives up only on a second timed-out read: without halving the
    # read timeout this took twice the stall timeout.
    assert 1.0 <= noticed <= 1.5 + 1.0, watch.lines
    assert watch.source.stats.stalls == 1 and watch.source.stats.reconnects == 1


def test_detstream_run_on_an_rtsp_camera(camera, tmp_path):
    stats_path = tmp_path / "stats.json"
    result = run_main("run", "--source", camera.url, *MODEL, "--max-frames", "20",
                      "--stats-json", str(stats_path), "--save-json", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(stats_path.read_text())
    assert stats["frames_out"] == 20 and stats["source"]["reconnects"] == 0
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 20


# ------------------------------------------------------------------------ damaged files
@pytest.fixture(scope="module")
def corrupt_clip(tmp_path_factory) -> Path:
    """200 frames of H.264 with 20 KB of garbage written over the middle of the file."""
    path = tmp_path_factory.mktemp("corrupt") / "corrupt.mp4"
    config = SceneConfig(width=320, height=180, fps=25, frames=200, seed=11, objects=5)
    with VideoWriter(path, 320, 180, 25) as writer:
        for image, _ in SyntheticScene(config):
            writer.write(image)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20_000] = np.random.default_rng(0).bytes(20_000)
    path.write_bytes(bytes(data))
    return path


def test_a_video_with_garbage_in_the_middle_is_decoded_past_it(corrupt_clip):
    source = open_source(str(corrupt_clip))
    indices = [frame.index for frame in source]
    source.close()
    stats = source.stats
    assert stats.error is None
    assert stats.frames_read == len(indices) >= 120  # most frames, including those after it
    assert indices[-1] >= 190 and stats.frames_skipped >= 1
    assert 190 <= stats.frames_read + stats.frames_skipped <= 200
    # Skipped frames keep their place: the indices jump over them.
    assert indices[-1] == len(indices) + stats.frames_skipped - 1
    assert "damaged frame" in source.grabber.note


def test_detstream_run_on_a_video_with_garbage_in_the_middle(corrupt_clip, tmp_path):
    out = tmp_path / "out.mp4"
    stats_path = tmp_path / "stats.json"
    result = run_main("run", "--source", str(corrupt_clip), *MODEL, "--output", str(out),
                      "--stats-json", str(stats_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "damaged frame" in result.stderr
    stats = json.loads(stats_path.read_text())
    with av.open(str(out)) as container:
        written = sum(1 for _ in container.decode(video=0))
    assert written == stats["frames_out"] >= 120
    assert stats["frames_skipped"] >= 1


def _image_folder(folder: Path, good: int, bad: int) -> Path:
    folder.mkdir()
    image = next(iter(SyntheticScene(SceneConfig(width=160, height=96, frames=1, seed=2))))[0]
    for i in range(good):
        cv2.imwrite(str(folder / f"good{i}.jpg"), image)
    for i in range(bad):
        (folder / f"bad{i}.jpg").write_text("this is a text file, not a JPEG\n")
    return folder


def test_an_unreadable_image_is_skipped_with_a_warning(tmp_path):
    folder = _image_folder(tmp_path / "images", good=1, bad=1)
    stats_path = tmp_path / "stats.json"
    result = run_main("run", "--source", str(folder), *MODEL, "--save-json",
                      str(tmp_path / "out.jsonl"), "--stats-json", str(stats_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1
    assert f"skipping {folder / 'bad0.jpg'}" in result.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["frames_out"] == 1 and stats["frames_skipped"] == 1


def test_a_folder_of_unreadable_images_processes_no_frame(tmp_path):
    folder = _image_folder(tmp_path / "images", good=0, bad=2)
    result = run_cli("run", "--source", str(folder), *MODEL, "--save-json",
                     str(tmp_path / "out.jsonl"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no frame could be processed" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("skipping") == 2


def test_a_synthetic_scene_passes_over_a_frame_as_if_it_had_drawn_it():
    """``skip`` moves the world without drawing: the frames after it are those of the scene
    read frame by frame."""
    from detstream.stream.sources.grabbers import SyntheticGrabber

    config = SceneConfig(width=160, height=120, fps=10, frames=6, seed=2)
    scene = list(SyntheticScene(config))
    grabber = SyntheticGrabber(config)
    grabber.open()
    grabber.grab()
    assert grabber.skip() and grabber.skip()
    image, pts, truth = grabber.grab()
    assert pts == pytest.approx(0.3) and np.array_equal(image, scene[3][0])
    np.testing.assert_array_equal(truth.track_ids, scene[3][1].track_ids)
    assert grabber.grab() is not None and grabber.grab() is not None
    assert not grabber.skip() and grabber.grab() is None  # six frames, then the end


def test_a_paced_camera_keeps_its_clock_when_a_frame_is_late():
    """A paced synthetic camera whose every fifth frame takes 2.5 frame intervals to produce
    still sends frames on its 20 fps clock: the late frame goes out at once and the frames
    due meanwhile are passed over, counted as dropped, their indices left as gaps."""
    source = open_source("synthetic://?seed=1&size=96x64&fps=20&live=1")
    grab, calls = source.grabber.grab, [0]

    def slow_every_fifth():
        calls[0] += 1
        if calls[0] % 5 == 0:
            time.sleep(2.5 / 20)
        return grab()

    source.grabber.grab = slow_every_fifth
    indices = []
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < 3.0:
            frame = source.read()
            indices.append(frame.index)
    finally:
        source.close()
    sent = indices[-1] + 1  # every frame the camera's clock made: taken or passed over
    assert 0.85 * 60 <= sent <= 1.1 * 60, sent  # 3 s at 20 fps
    gaps = [b - a for a, b in itertools.pairwise(indices) if b - a > 1]
    assert gaps and source.stats.frames_dropped >= len(gaps)
