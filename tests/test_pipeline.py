"""The pipeline on real files, a real loopback MJPEG server and live synthetic sources: frame
counts, H.264 output, interruption, truncated input, reconnection, drops, failing stages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import av
import numpy as np
import pytest

from detstream.engines.data.synthetic import SceneConfig
from detstream.engines.data.synthetic.sequence import write_sequence
from detstream.engines.predict import Predictor
from detstream.engines.runtime.select import open_backend
from detstream.stream.draw import Annotator
from detstream.stream.pipeline.runner import Pipeline, PipelineOptions, StageError
from detstream.stream.sinks import JsonlSink, VideoSink
from detstream.stream.sources import open_source
from detstream.stream.track import make_tracker
from tests.conftest import REPO, run_cli, run_main, shared_path
from tests.helpers.mjpeg_server import MjpegServer
from tests.helpers.tiny import FailingBackend, tiny_checkpoint


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.safetensors", 192)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 48-frame synthetic H.264 clip (real encoder, real file)."""
    out = tmp_path_factory.mktemp("clip")
    write_sequence(out, SceneConfig(width=320, height=180, fps=24, frames=48, seed=3))
    return out / "video.mp4"


def decode_count(path) -> tuple[str, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, frames, float(stream.average_rate)


def make_pipeline(model, source, sinks=(), tracker="bytetrack", **options):
    predictor = Predictor(open_backend(model, "torch", "cpu", threads=1), conf=0.05)
    return Pipeline(source, predictor, make_tracker(tracker, source.fps or 30),
                    Annotator(), list(sinks), PipelineOptions(**options))


def test_file_mode_writes_every_frame_as_h264(model, clip, tmp_path):
    result = run_main("run", "--source", str(clip), "--model", str(model), "--output",
                      str(tmp_path / "out.mp4"), "--save-json", str(tmp_path / "out.jsonl"),
                      "--save-mot", str(tmp_path / "out.txt"), "--stats-json",
                      str(tmp_path / "stats.json"), "--backend", "torch")
    assert result.returncode == 0, result.stderr[-2000:]
    codec, frames, rate = decode_count(tmp_path / "out.mp4")
    assert (codec, frames, rate) == ("h264", 48, 24.0)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(48))
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames_in"] == stats["frames_out"] == 48 and stats["frames_dropped"] == 0
    assert set(stats["latency_ms"]) >= {"p50", "p95", "max"}
    for stage in ("preprocess", "infer", "track", "draw", "output"):
        assert set(stats["stages"][stage]) >= {"mean_ms", "p95_ms"}


@pytest.mark.parametrize("preset, cabac", [("ultrafast", b"cabac=0"), ("veryfast", b"cabac=1")])
def test_the_video_preset_reaches_the_encoder(model, clip, tmp_path, preset, cabac):
    """x264 writes its settings into the stream: ultrafast turns CABAC off, veryfast keeps it."""
    from detstream.stream.session import RunConfig, build

    out = tmp_path / "out.mp4"
    session = build(RunConfig(source=str(clip), model=str(model), backend="torch",
                              tracker="bytetrack", output=out, video_preset=preset,
                              max_frames=6))
    session.pipeline.run()
    assert cabac in out.read_bytes()
    assert decode_count(out)[1] == 6


def test_auto_decoding_uses_nvdec_where_there_is_one_and_the_cpu_elsewhere(model, clip):
    """Without NVDEC (these machines) ``auto`` decodes the very frames ``software`` does and
    ``--decoder nvdec`` is one clear error; with it, ``auto`` decodes on the GPU, to within
    a few levels of the CPU, and ``--decoder nvdec`` runs."""
    from detstream.engines.data.video import nvdec_unavailable

    hardware = nvdec_unavailable() is None
    auto = open_source(str(clip), live=False, decoder="auto")
    software = open_source(str(clip), live=False, decoder="software")
    try:
        for _ in range(5):
            a, b = auto.read(), software.read()
            if hardware:
                assert np.abs(a.image.astype(int) - b.image).mean() < 3.0
            else:
                assert np.array_equal(a.image, b.image)
        assert auto.grabber.hardware is hardware and software.grabber.hardware is False
    finally:
        auto.close()
        software.close()
    result = run_cli("run", "--source", str(clip), "--model", str(model), "--backend", "torch",
                     "--decoder", "nvdec", "--max-frames", "2")
    assert "Traceback" not in result.stderr
    if hardware:
        assert result.returncode == 0 and "decoded by NVDEC" in result.stderr, result.stderr
    else:
        assert result.returncode == 2, result.stderr[-2000:]
        assert "--decoder nvdec: NVIDIA's video decoder is not available here" in result.stderr


def test_an_unknown_video_preset_is_one_clear_error(model, clip):
    from detstream.engines.errors import UserInputError
    from detstream.stream.session import RunConfig, build

    with pytest.raises(UserInputError,
                       match="video_preset: unknown x264 preset 'quick'; use one of ultrafast"):
        build(RunConfig(source=str(clip), model=str(model), video_preset="quick"))


def test_default_run_scores_against_synthetic_truth(model, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "detstream", "run", "--model", str(model), "--backend", "torch",
         "--source", "synthetic://?seed=2&size=320x180&frames=30"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "runs" / "run-1"
    for name in ("video.mp4", "detections.jsonl", "tracks.txt", "stats.json"):
        assert (run_dir / name).is_file(), name
    stats = json.loads((run_dir / "stats.json").read_text())
    assert "detection" in stats["scores"] and "map50" in stats["scores"]["detection"]
    assert "detection vs truth" in result.stdout


def test_interrupted_run_leaves_a_playable_video(model, tmp_path):
    out = tmp_path / "out.mp4"
    process = subprocess.Popen(
        [sys.executable, "-m", "detstream", "run", "--model", str(model), "--backend", "torch",
         "--source", "synthetic://?seed=1&size=320x180&frames=5000", "--output", str(out),
         "--save-json", str(tmp_path / "out.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    codec, frames, _ = decode_count(out)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert codec == "h264" and 0 < frames == len(lines) < 5000


def test_truncated_file_processes_the_readable_frames(model, clip, tmp_path):
    broken = tmp_path / "broken.mp4"
    data = clip.read_bytes()
    broken.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out.mp4"
    result = run_cli("run", "--source", str(broken), "--model", str(model), "--backend", "torch",
                     "--output", str(out))
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        _, frames, _ = decode_count(out)
        assert 0 < frames <= 48
    else:  # nothing readable at all is a clear, one-line failure
        assert result.returncode == 2 and result.stderr.count("error:") == 1


def test_network_source_reconnects_after_the_server_restarts(model, tmp_path):
    server = MjpegServer(fps=25)
    server.start()
    logs: list[str] = []
    source = open_source(server.url, log=logs.append)
    pipeline = make_pipeline(model, source, max_frames=None)
    seen: list[float] = []
    pipeline.on_packet = lambda packet: seen.append(time.perf_counter())

    def outage() -> None:
        time.sleep(1.5)
        server.stop()
        time.sleep(1.5)
        server.start()

    chaos = threading.Thread(target=outage)
    pipeline.start()
    restart_at = time.perf_counter() + 3.0
    chaos.start()
    chaos.join()
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and sum(t > restart_at + 0.5 for t in seen) < 10:
        time.sleep(0.1)
    pipeline.close()
    server.stop()
    assert pipeline.error is None
    assert source.stats.reconnects >= 1 and source.stats.outage_seconds > 0.5
    assert sum(t > restart_at + 0.5 for t in seen) >= 10  # frames flowed again
    assert any("reconnected" in line for line in logs)


def test_live_source_drops_frames_instead_of_building_latency(model):
    class Slow(Predictor):
        def infer(self, batch):
            time.sleep(0.06)  # slower than the 40 fps source
            return super().infer(batch)

    source = open_source("synthetic://?seed=4&size=320x180&fps=40&frames=0&live=1")
    backend = open_backend(model, "torch", "cpu", threads=1)
    latencies = []
    pipeline = Pipeline(source, Slow(backend, conf=0.05), None, None, [],
                        PipelineOptions(max_frames=40),
                        on_packet=lambda p: latencies.append((p.done - p.captured) * 1000))
    report = pipeline.run()
    assert report["frames_out"] == 40 and source.stats.frames_dropped > 0
    # Latency stays bounded: the last frames wait no longer than the first ones did.
    first, last = sorted(latencies[5:15])[5], sorted(latencies[-10:])[5]
    assert last < 2.0 * first + 60


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority: Linux")
def test_stages_yield_to_cpu_inference_only_while_it_leaves_a_core_free(model, clip, monkeypatch):
    """One single-threaded inference call on two cores: the other stages run below it. Two
    calls at once (a file's plan) fill both cores: every stage then keeps its priority."""
    from detstream.stream.pipeline.threads import STAGE_NICENESS

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    for workers, lowered in ((1, STAGE_NICENESS), (2, 0)):
        seen = []
        pipeline = make_pipeline(model, open_source(str(clip), live=False), max_frames=4,
                                 inference_workers=workers)
        pipeline.on_packet = lambda _, seen=seen: seen.append(
            os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - base)
        pipeline.run()
        assert seen and set(seen) == {lowered}, (workers, seen)


def test_a_stale_live_frame_is_passed_over_for_the_next_one():
    source = open_source("synthetic://?seed=4&size=320x180&fps=20&frames=0&live=1")
    try:
        first = source.read()
        time.sleep(0.5)  # the reader learns the interval (50 ms); frames keep replacing
        assert source.interval == pytest.approx(0.05, rel=0.3)
        fresh_ages, waits = [], []
        for _ in range(10):
            source.read()
            source.read()  # blocks until the next frame arrives: now in step with the source
            time.sleep(0.05 * 1.7)  # one more came; it is now 0.7 of an interval old: stale
            start = time.perf_counter()
            source.wait_for_fresh_frame()
            waits.append(time.perf_counter() - start)
            frame = source.read()
            fresh_ages.append(time.perf_counter() - frame.captured)
        assert frame.index > first.index
        # Without the wait the frame taken would be 35 ms old; with it, the next one is taken
        # as it arrives, about 15 ms later. Medians, so that a loaded machine's scheduling
        # hiccups do not decide the outcome.
        assert np.median(fresh_ages) < 0.05 * 0.4, fresh_ages
        assert 0.05 * 0.1 < np.median(waits) < 0.05 * 0.6, waits
    finally:
        source.close()


def test_a_failing_stage_stops_the_pipeline_and_names_itself(model, clip, tmp_path):
    source = open_source(str(clip))
    backend = FailingBackend(open_backend(model, "torch", "cpu", threads=1), fail_on=5,
                             message="simulated device failure")
    out = tmp_path / "out.mp4"
    pipeline = Pipeline(source, Predictor(backend), make_tracker("bytetrack", 24), Annotator(),
                        [VideoSink(out, 24), JsonlSink(tmp_path / "out.jsonl")])
    start = time.perf_counter()
    with pytest.raises(StageError, match="the infer stage failed: RuntimeError: simulated"):
        pipeline.run()
    assert time.perf_counter() - start < 15
    codec, frames, _ = decode_count(out)  # finalised: the frames before the failure play
    assert codec == "h264" and frames >= 1


@pytest.mark.parametrize("args, message", [
    (["--source", "missing.mp4"], "does not exist"),
    (["--source", "9"], "camera 9 cannot be opened"),
    (["--source", "rtsp://127.0.0.1:9/none"], "cannot open rtsp://127.0.0.1:9/none"),
    (["--source", "{clip}", "--output", "out.avi"], "write .mp4"),
    (["--source", "{clip}", "--classes", "dog"], "--classes 'dog' is not a class"),
])
def test_run_mistakes_are_one_line(model, clip, args, message):
    args = [a.replace("{clip}", str(clip)) for a in args]
    result = run_main("run", "--model", str(model), "--backend", "torch", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr


def test_real_video_file_in_file_mode(model, tmp_path):
    video = shared_path("videos/bikes.mp4")
    out = tmp_path / "bikes.mp4"
    result = run_main("run", "--source", str(video), "--model", str(model), "--backend",
                      "torch", "--output", str(out), "--max-frames", "60")
    assert result.returncode == 0, result.stderr[-2000:]
    assert decode_count(out)[:2] == ("h264", 60)


def test_bench_pipeline_reports_wall_and_cpu_time_and_an_honest_ceiling(model, clip, tmp_path):
    out = tmp_path / "bench.json"
    result = run_cli("bench", "pipeline", "--source", str(clip), "--model", str(model),
                     "--backend", "onnxruntime", "--tracker", "bytetrack", "--frames", "24",
                     "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    stages = ("decode", "preprocess", "inference", "postprocess_track", "draw", "encode")
    assert tuple(report["stage_ms"]) == stages and tuple(report["stage_cpu_ms"]) == stages
    assert all(report["stage_ms"][s] > 0 and report["stage_cpu_ms"][s] > 0 for s in stages)
    assert report["frames"] == 24
    # The ceiling is the tighter of the two bounds, from the figures it reports.
    by_slowest = 1000.0 / max(report["stage_ms"].values())
    by_cores = report["cores"] * 1000.0 / sum(report["stage_cpu_ms"].values())
    assert report["ceiling_fps"] == pytest.approx(min(by_slowest, by_cores), rel=0.01)
    assert isinstance(report["inference_spin"], bool) and report["inference_threads"] >= 1
    assert report["pipelined_fps"] > 0 and report["sequential_fps"] > 0
    # The pipeline ran three times; the middle run is the one reported.
    runs = report["pipelined_fps_runs"]
    assert len(runs) == 3 and report["pipelined_fps"] == sorted(runs)[1]
    assert "ceiling" in result.stdout and "CPU ms" in result.stdout
    assert "median of 3 runs" in result.stdout
    # Every stage but inference is checked against its CPU budget for this frame size.
    budgets = report["stage_budget_cpu_ms"]
    assert set(budgets) == set(stages) - {"inference"} and report["size"] == [320, 180]
    assert report["stages_over_budget"] == [
        s for s in budgets if report["stage_cpu_ms"][s] > budgets[s]]
    assert "budget" in result.stdout


def test_bench_pipeline_with_json_lines_only_draws_and_encodes_nothing(model, clip, tmp_path):
    out = tmp_path / "bench.json"
    result = run_cli("bench", "pipeline", "--source", str(clip), "--model", str(model),
                     "--backend", "onnxruntime", "--tracker", "bytetrack", "--frames", "12",
                     "--outputs", "jsonl", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    stages = ("decode", "preprocess", "inference", "postprocess_track", "jsonl")
    assert report["outputs"] == "jsonl" and tuple(report["stage_cpu_ms"]) == stages
    assert report["pipelined_fps"] > 0 and report["pipelined_vs_inference_alone"] > 0
    by_cores = report["cores"] * 1000.0 / sum(report["stage_cpu_ms"].values())
    assert report["ceiling_fps"] <= by_cores * 1.01
    replayed = run_cli("bench", "pipeline", "--source", str(clip), "--model", str(model),
                       "--outputs", "jsonl", "--replay-ms", "1")
    assert replayed.returncode == 2 and "drop --outputs jsonl" in replayed.stderr


def test_pipeline_commands_ask_openmp_to_sleep_not_spin():
    code = ("import os; from detstream.stream.pipeline.threads import prefer_passive_openmp as p; "
            "first = p(); import torch; print(first, os.environ['OMP_WAIT_POLICY'], p())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, cwd=REPO, timeout=120)
    assert fresh.stdout.split() == ["True", "PASSIVE", "False"], fresh.stderr
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, cwd=REPO, timeout=120)
    assert chosen.stdout.split() == ["False", "ACTIVE", "False"], chosen.stderr


def test_json_lines_carry_each_track_s_lifecycle(tmp_path):
    """Every id in the detections was announced as started on or before its first frame, an
    ended id never comes back, losses and recoveries alternate, and a lost track's box is
    there only as a coasted guess (flagged)."""
    from detstream.stream.session import RunConfig, build

    path = tmp_path / "out.jsonl"
    session = build(RunConfig(source="synthetic://?seed=4&size=320x192&frames=90&objects=6"
                                     "&min_size=24", tracker="botsort", save_json=path))
    session.pipeline.run()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    state: dict[int, str] = {}
    kinds = set()
    coasted = 0
    for line in lines:
        for event in line["events"]:
            kind, track = event["event"], event["track_id"]
            kinds.add(kind)
            before = state.get(track)
            assert (before, kind) in {(None, "started"), ("started", "lost"), ("lost", "ended"),
                                      ("lost", "recovered"), ("recovered", "lost"),
                                      ("started", "ended"), ("recovered", "ended")}, \
                (line["frame"], before, kind)
            assert isinstance(event["class"], str) and event["class"]
            state[track] = kind
        for det in line["detections"]:
            expected = ("lost",) if det.get("coasted") else ("started", "recovered")
            assert state.get(det["track_id"]) in expected, (line["frame"], det)
            coasted += bool(det.get("coasted"))
    assert {"started", "lost"} <= kinds and len(state) >= 3 and coasted
