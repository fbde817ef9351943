"""The benchmark package's own arithmetic: ceilings, drift, slopes and variant lists; and the
live jobs (``bench live``, ``bench multistream --live``) run for a few seconds, their figures and
JSON keys checked (not their timings: those are recorded, not asserted). The other jobs run end
to end in test_pipeline.py, test_tracking.py, test_engines.py and test_long_runs.py through
``detstream bench``."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from detstream.engines.data.synthetic import SceneConfig, parse_synthetic_uri
from detstream.engines.data.synthetic.sequence import write_sequence
from detstream.engines.errors import UserInputError
from detstream.stream.bench.budget import budgets_for, over_budget
from detstream.stream.bench.cameras import camera_uri, paced_and_file, scene_params, seeded
from detstream.stream.bench.common import median_ms, timed
from detstream.stream.bench.engine import VARIANTS, parse_variants
from detstream.stream.bench.live import PRINTED, Finished, window_drift
from detstream.stream.bench.pipeline import (
    STAGES,
    InferenceSetting,
    StagesAlone,
    StageTime,
    best_inference_setting,
    ceiling_fps,
    concurrent_inference,
    cpu_stage_ceiling,
    time_each,
    with_inference,
)
from detstream.stream.bench.soak import ProcessSample, memory_slope
from tests.conftest import run_cli, run_main


@pytest.mark.parametrize("wall, cpu, cores, expected", [
    ({"a": 10.0, "b": 20.0}, {"a": 10.0, "b": 20.0}, 4, 50.0),   # the slowest stage binds
    ({"a": 10.0, "b": 20.0}, {"a": 10.0, "b": 20.0}, 1, 1000 / 30),  # one core: the sum binds
    ({"a": 5.0}, {"a": 40.0}, 2, 50.0),  # a stage that costs more CPU than wall time
])
def test_the_ceiling_is_the_tighter_of_the_slowest_stage_and_the_cores(wall, cpu, cores,
                                                                       expected):
    assert ceiling_fps(wall, cpu, cores) == pytest.approx(expected)


def _alone(settings: list[InferenceSetting]) -> StagesAlone:
    stages = {name: StageTime([2.0, 2.0], 2.0) for name in STAGES if name != "inference"}
    return StagesAlone(stages, settings, 2, (64, 48), 30.0)


def test_the_best_inference_setting_is_the_one_with_the_highest_ceiling():
    # On two cores the other stages cost 10 ms of CPU: one thread is too slow alone (50 FPS),
    # spinning burns the cores (29 FPS), two threads without spinning reach 2000 / 34.
    one = InferenceSetting(1, False, StageTime([20.0, 20.0], 20.0))
    two = InferenceSetting(2, False, StageTime([12.0, 12.0], 24.0))
    spinning = InferenceSetting(2, True, StageTime([11.0, 11.0], 60.0))
    alone = _alone([one, two, spinning])
    best, ceiling = best_inference_setting(alone, cores=2)
    assert best is two and ceiling == pytest.approx(2000.0 / 34.0)
    assert tuple(with_inference(alone, best)) == STAGES


def test_time_each_keeps_values_and_charges_cpu_per_call():
    values, stage = time_each(lambda i=i: (time.sleep(0.002), i)[1] for i in range(3))
    assert values == [0, 1, 2] and len(stage.wall_ms) == 3
    assert min(stage.wall_ms) >= 2.0 and stage.cpu_ms < stage.mean_ms  # asleep, not busy
    assert timed(lambda: 7)[0] == 7 and median_ms(lambda: None, runs=5, warmup=1) >= 0.0


def test_time_each_can_drop_values_as_a_pipeline_drops_frames():
    assert time_each((lambda i=i: i) for i in range(4))[0] == [0, 1, 2, 3]
    values, stage = time_each(((lambda i=i: i) for i in range(4)), keep=False)
    assert values == [] and len(stage.wall_ms) == 4


def test_stage_budgets_grow_with_the_frame_and_flag_only_the_stages_over():
    small, large = budgets_for(640, 360), budgets_for(1920, 1080)
    assert set(small) == {"decode", "preprocess", "postprocess_track", "draw", "encode"}
    assert all(large[name] > small[name] for name in small)
    cpu = {name: ms * 0.9 for name, ms in large.items()} | {"inference": 100.0}
    assert over_budget(cpu, 1920, 1080) == []  # inference has no budget
    cpu["encode"] = large["encode"] + 0.1
    assert over_budget(cpu, 1920, 1080) == ["encode"]


def test_drift_compares_the_first_and_last_windows():
    done = [Finished(float(t), 10.0 if t < 30 else 12.0, 5.0) for t in range(90)]
    first, last, drift = window_drift(done, window=30.0)
    assert (first, last) == (pytest.approx(10.0, abs=0.2), 12.0)
    assert drift == pytest.approx(last / first - 1.0)


def test_memory_slope_leaves_out_the_warm_up_and_is_per_hour():
    samples = [ProcessSample(seconds=s, rss_mb=(500.0 if s < 600 else 100.0 + s / 360.0),
                             fds=10, threads=5, frames=0) for s in range(0, 3600, 60)]
    assert memory_slope(samples, warmup=600.0) == pytest.approx(10.0)  # 10 MB an hour
    assert memory_slope(samples[:1], warmup=0.0) == 0.0


@pytest.mark.parametrize("text, expected", [
    ("all", list(VARIANTS)),
    ("torch-fp32, onnxruntime", ["torch-fp32", "onnxruntime"]),
    ("torch", ["torch"]),
])
def test_backend_lists(text, expected):
    assert parse_variants(text) == expected


def test_an_unknown_backend_is_named():
    with pytest.raises(UserInputError, match="unknown warp-drive; choose all or from tensorrt"):
        parse_variants("onnxruntime,warp-drive")


def test_the_cpu_stage_ceiling_leaves_inference_out_but_not_its_time():
    stages = {"decode": StageTime([2.0], 2.0), "encode": StageTime([4.0], 6.0)}
    assert cpu_stage_ceiling(stages, 1.0, 2) == pytest.approx(250.0)  # 2 cores / 8 ms CPU
    assert cpu_stage_ceiling(stages, 10.0, 2) == pytest.approx(100.0)  # inference binds


def test_concurrent_inference_charges_wall_time_per_frame_of_the_whole_run():
    from detstream.engines.runtime.select import open_backend

    backend = open_backend("default", "onnxruntime", imgsz=160, threads=1)
    batch = torch.zeros(1, 3, 160, 160, dtype=backend.dtype)
    stage = concurrent_inference(backend, [batch] * 8, workers=2)
    assert len(stage.wall_ms) == 8 and len(set(stage.wall_ms)) == 1
    assert stage.cpu_ms > 0


def test_bench_pipeline_with_replayed_outputs(tmp_path):
    out = tmp_path / "replay.json"
    result = run_cli("bench", "pipeline", "--source", "synthetic://?seed=2&size=320x192&frames=40",
                     "--imgsz", "160", "--replay-ms", "2", "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["replay_ms"] == 2 and figures["frames"] == 40
    assert set(figures["stage_cpu_ms"]) == {"decode", "preprocess", "postprocess_track", "draw",
                                            "encode"}
    assert 0 < figures["cpu_stage_ceiling_fps"] <= 500  # never faster than 2 ms inference
    assert figures["pipelined_fps"] > 0 and figures["pipelined_vs_cpu_ceiling"] > 0
    assert "CPU-stage ceiling" in result.stdout


def test_bench_multistream_compares_one_batched_process_with_separate_ones(tmp_path):
    out = tmp_path / "multi.json"
    result = run_cli("bench", "multistream", "--source",
                     "synthetic://?seed=3&size=320x192&frames=20", "--streams", "2",
                     "--imgsz", "160", "--frames", "20", "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["streams"] == 2
    assert figures["batched_fps"] > 0 and figures["separate_fps"] > 0
    assert figures["speedup_vs_separate"] == pytest.approx(
        figures["batched_fps"] / figures["separate_fps"], rel=0.01)
    assert figures["batched_inference"]["frames"] == 40
    assert "speedup" in result.stdout


def test_multistream_in_process_against_the_engine_alone():
    from detstream.stream.bench.common import BenchModel
    from detstream.stream.bench.multistream import multistream_vs_engine

    figures = multistream_vs_engine("synthetic://?seed=4&size=320x192&frames=12", 2,
                                    BenchModel("default", "onnxruntime", imgsz=160), frames=12)
    assert figures["aggregate_fps"] > 0 and figures["engine_only_fps"] > 0
    assert figures["end_to_end_vs_engine"] == pytest.approx(
        figures["aggregate_fps"] / figures["engine_only_fps"], rel=0.01)
    assert figures["inference"]["frames"] == 24


def test_bench_journal_prints_what_the_journal_costs_per_frame(tmp_path):
    out = tmp_path / "journal.json"
    result = run_cli("bench", "journal", "--frames", "400", "--boxes", "5", "--rounds", "1",
                     "--json", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert (figures["frames"], figures["boxes"], figures["rounds"]) == (400, 5, 1)
    # Two small files written a frame: more than nothing, far less than 10 ms a frame.
    assert 0 < figures["sinks_us"] < 10_000 and 0 < figures["with_journal_us"] < 10_000
    assert figures["journal_us"] == pytest.approx(
        figures["with_journal_us"] - figures["sinks_us"], abs=0.2)  # each rounded to 0.1
    assert (f"JSON Lines + MOT sinks, 5 boxes a frame: {figures['sinks_us']} µs/frame; with "
            f"the progress journal {figures['with_journal_us']} µs/frame; the journal "
            f"{figures['journal_us']:+} µs/frame") in result.stdout


def test_declaring_every_bench_job_loads_no_torch():
    # Each job imports its benchmark only when it runs: `detstream --help` stays light.
    code = ("import sys; from detstream.stream.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


#: A small model for the live jobs: the default model at 160 px on onnxruntime.
SMALL_MODEL = ("--model", "default", "--backend", "onnxruntime", "--imgsz", "160")


def test_a_camera_is_the_default_scene_at_its_size_paced_and_its_file_twin_the_same_frames():
    uri = camera_uri((640, 480), seed="{seed}", kind="static", scene=scene_params("objects=4"))
    config, live = parse_synthetic_uri(seeded(uri, 3))
    assert live and config.frames is None and config.seed == 3
    assert (config.width, config.height, config.fps) == (640, 480, 30.0)
    assert not config.camera_motion and config.objects == 4 and config.min_size == 24
    paced, file, frames = paced_and_file(seeded(uri, 3), seconds=2.0)
    assert frames == 60
    assert parse_synthetic_uri(paced) == (parse_synthetic_uri(file)[0], True)
    assert parse_synthetic_uri(file)[0].frames == 60 and "live" not in file
    # a scene with an end of its own keeps it when shorter
    assert paced_and_file("synthetic://?frames=20&fps=10", 5.0)[2] == 20
    with pytest.raises(UserInputError, match="no parameter 'bogus'"):
        scene_params("bogus=1")


@pytest.mark.parametrize("args, error", [
    (("bench", "multistream", "--live", "--option", "live=0"),
     "live is set by the benchmark itself"),
    (("bench", "multistream", "--live", "--option", "bogus=1"), "unknown run option 'bogus'"),
    (("bench", "multistream", "--live", "--option", "detect_every=-1"),
     "detect_every: -1 is below 0"),
    (("bench", "multistream", "--live", "--scene", "bogus=1"), "no parameter 'bogus'"),
    (("bench", "live", "--sizes", "640x"), "640x"),
    (("bench", "multistream", "--live", "--streams", "3"), "--streams is not used with --live"),
    (("bench", "multistream", "--cameras", "2"), "--cameras is only used with --live"),
    (("bench", "multistream"), "--source is required without --live"),
    (("bench", "multistream", "--live", "--source", "synthetic://?live=1", "--size",
      "320x240"), "give them in its URI"),
])
def test_the_live_jobs_refuse_bad_input_in_one_line(args, error):
    result = run_main(*args)
    assert result.returncode == 2 and error in result.stderr, result.stderr


def test_bench_live_sets_a_paced_camera_against_file_mode(tmp_path):
    out = tmp_path / "live.json"
    result = run_main("bench", "live", *SMALL_MODEL, "--sizes", "320x240", "--seconds", "2",
                      "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    (case,) = figures["cases"]
    assert case["name"] == "synthetic 320x240" and case["truth"]
    live = case["live"]
    assert set(PRINTED) <= set(live) and live["source_fps"] == 30
    assert live["frames_out"] > 10 and live["latency_ms_p95"] >= live["latency_ms_p50"] > 0
    assert live["latency_p95_vs_processing"] == pytest.approx(
        live["latency_ms_p95"] / live["processing_ms_mean"], rel=0.01)
    assert live["first_window_p95_ms"] > 0 and live["last_window_p95_ms"] > 0
    assert live["detection"]["frames_detected"] > 0 and "waits" in live
    assert case["reference"]["frames"] == case["reference"]["frames_out"] <= 60
    assert case["reference"]["detection"]["frames_detected"] == case["reference"]["frames"]
    scores = case["scores"]
    for name in ("HOTA", "IDF1", "MOTA"):
        assert scores["difference"][name] == pytest.approx(
            scores["live"][name] - scores["file"][name], abs=2e-4)
    assert set(case["agreement"]) >= {"HOTA", "IDF1", "MOTA"}
    names = [target["name"] for target in case["targets"]]
    assert names == ["output FPS", "latency growth (p95, last vs first window)",
                     "latency p50 ms", "latency p95 ms", "HOTA against the truth, live - file",
                     "IDF1 against the truth, live - file"]
    assert case["met"] == all(target["met"] for target in case["targets"])
    assert figures["all_met"] == case["met"]
    assert "== synthetic 320x240: synthetic://?" in result.stdout
    assert "against the truth" in result.stdout and "issue 36 targets:" in result.stdout
    assert "kept up" in result.stdout or "slower than" in result.stdout
    assert "output FPS" in result.stdout and ">= 29.5" in result.stdout


def test_bench_live_plays_a_video_file_against_file_mode(tmp_path):
    write_sequence(tmp_path, SceneConfig(width=320, height=180, fps=24, frames=36, seed=5,
                                         objects=5, min_size=30))
    out = tmp_path / "live.json"
    result = run_main("bench", "live", *SMALL_MODEL, "--video", str(tmp_path / "video.mp4"),
                      "--video-model", "default", "--seconds", "5", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    (case,) = json.loads(out.read_text())["cases"]
    assert case["name"] == "video.mp4" and not case["truth"] and case["scores"] is None
    assert case["live"]["source_fps"] == 24 and case["live"]["frames_out"] > 10
    assert case["reference"]["frames"] <= 36
    assert case["targets"][-1]["name"] == "IDF1 of live tracks against the file run's"
    assert case["targets"][-1]["value"] == (case["agreement"] or {}).get("IDF1")
    assert ">= 23.5" in result.stdout and "live tracks against the file run's" in result.stdout


def test_bench_multistream_counts_live_cameras(tmp_path):
    out = tmp_path / "cameras.json"
    result = run_main("bench", "multistream", "--live", *SMALL_MODEL, "--cameras", "1,2",
                      "--seconds", "1.5", "--warmup", "0.5", "--size", "160x120",
                      "--source-kind", "static", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["mode"] == "live" and figures["static_scene"] and figures["hold_fps"] == 29.5
    assert "seed={seed}" in figures["source"] and "camera_motion=0" in figures["source"]
    # The cameras were recorded to H.264 and played live (decoded here, as an IP camera's).
    assert figures["feed"] == "h264" and "recording 2 cameras to H.264" in result.stderr
    assert "decoded here" in result.stdout
    assert [run["cameras"] for run in figures["runs"]] == [1, 2]
    for run in figures["runs"]:
        count = run["cameras"]
        for key in ("fps", "latency_ms_p50", "latency_ms_p95", "detections_per_s",
                    "frames_dropped"):
            assert len(run[key]) == count, key
        assert run["min_fps"] == min(run["fps"]) and run["hold"] == (run["min_fps"] >= 29.5)
        assert run["inference"]["frames"] > 0
    held = [run["cameras"] for run in figures["runs"] if run["hold"]]
    assert figures["cameras_per_machine"] == max(held, default=0)
    assert figures["target"] == 2 and figures["target_met"] == (max(held, default=0) >= 2)
    assert "cameras per machine:" in result.stdout and "target >= 2" in result.stdout
