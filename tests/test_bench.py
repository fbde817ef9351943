"""The benchmark package's own arithmetic: ceilings, drift, slopes and variant lists. The jobs
themselves run end to end in test_pipeline.py, test_tracking.py, test_engines.py and
test_long_runs.py through ``detstream bench``."""

from __future__ import annotations

import time

import pytest

from detstream.engines.errors import UserInputError
from detstream.stream.bench.common import median_ms, timed
from detstream.stream.bench.engine import VARIANTS, parse_variants
from detstream.stream.bench.live import Finished, window_drift
from detstream.stream.bench.pipeline import (
    STAGES,
    InferenceSetting,
    StagesAlone,
    StageTime,
    best_inference_setting,
    ceiling_fps,
    time_each,
    with_inference,
)
from detstream.stream.bench.soak import ProcessSample, memory_slope


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
