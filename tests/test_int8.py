"""``detstream export --int8`` (its accuracy check is part of the export) and the onnxruntime
backend's choice between an FP32 file and its INT8 copy (issue 36)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from detstream.engines.cache import file_sha256
from detstream.engines.errors import UserInputError
from detstream.engines.export.metadata import int8_path, int8_record
from detstream.engines.runtime import int8 as choice
from detstream.engines.runtime.onnxruntime_backend import OnnxRuntimeBackend
from detstream.engines.zoo.onnx_import import inspect_onnx
from tests.conftest import run_main, shared_path

#: Small and quick: the default model at 320, 16 calibration frames, 32 check images.
EXPORT = ("--imgsz", "320", "--int8", "--calibration-frames", "16", "--check-images", "32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The default model exported at 320 with its INT8 copy (synthetic calibration)."""
    out = tmp_path_factory.mktemp("int8") / "default.onnx"
    result = run_main("export", "--model", "default", *EXPORT, "--out", str(out))
    return out, result


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("DETSTREAM_CACHE", str(root))
    return root


def test_good_calibration_writes_the_int8_file_with_its_figures(exported):
    out, result = exported
    assert result.returncode == 0, result.stderr
    record = int8_record(int8_path(out))
    assert record is not None and record["passed"]
    assert record["fp32_sha256"] == file_sha256(out)
    # The default model scores about 0.79 at 320; INT8 within the default tolerance of it.
    assert record["map50_95_fp32"] > 0.6
    assert record["map50_95_fp32"] - record["map50_95_int8"] <= record["tolerance"] == 0.01
    assert record["calibration"] == "the synthetic world (held-out scenes)"
    assert (record["calibration_frames"], record["check_images"]) == (16, 32)
    assert f"mAP50-95 {record['map50_95_int8']:.4f} against FP32" in result.stdout
    # The INT8 file is a model of its own: the same contract, run as INT8.
    spec = inspect_onnx(int8_path(out))
    assert spec == inspect_onnx(out) and spec.input_size == (320, 320)
    assert OnnxRuntimeBackend(int8_path(out), spec).precision == "int8"


def test_calibration_on_black_frames_is_refused_and_no_file_kept(exported, tmp_path):
    fp32 = tmp_path / "model.onnx"
    shutil.copyfile(exported[0], fp32)
    stale = int8_path(fp32)  # an INT8 file from an earlier export must not survive a failure
    shutil.copyfile(int8_path(exported[0]), stale)
    black = tmp_path / "black"
    black.mkdir()
    for k in range(8):
        cv2.imwrite(str(black / f"{k}.png"), np.zeros((240, 320, 3), np.uint8))
    result = run_main("export", "--model", str(fp32), "--int8", "--calibration", str(black),
                      "--calibration-frames", "8", "--check-images", "32", "--out", str(fp32))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert "INT8 lost too much accuracy" in errors[0] and "--calibration" in errors[0]
    int8_map, fp32_map = (float(v) for v in re.findall(r"0\.\d{4}", errors[0])[:2])
    assert int8_map < fp32_map - 0.01  # ranges from black frames clip every real image
    assert not stale.exists() and fp32.exists()


def test_a_model_of_real_classes_needs_real_calibration_images(tmp_path):
    nano = shared_path("models/yolox_nano/yolox_nano.onnx")
    result = run_main("export", "--model", str(nano), "--int8",
                      "--out", str(tmp_path / "nano.onnx"))
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert "needs --calibration with real images" in error
    assert not (tmp_path / "nano.onnx").exists()


def _timer(fp32_ms: float, int8_ms: float, calls: list):
    def measure(fp32_path, int8_file, spec, threads):
        calls.append(threads)
        return fp32_ms, int8_ms
    return measure


def test_runtime_uses_int8_only_where_measured_faster_and_measures_once(exported, cache):
    out, _ = exported
    spec = inspect_onnx(out)
    calls: list[int] = []
    faster = choice.choose_precision(out, spec, 1, timer=_timer(10.0, 7.0, calls))
    assert faster.precision == "int8" and faster.path == int8_path(out)
    assert faster.reason.startswith("int8: 1.43x faster than fp32 on this CPU with 1 thread")
    again = choice.choose_precision(out, spec, 1, timer=_timer(10.0, 20.0, calls))
    assert again.precision == "int8" and "measured earlier" in again.reason
    assert calls == [1]  # the second decision came from the cache
    slower = choice.choose_precision(out, spec, 2, timer=_timer(10.0, 9.9, calls))
    assert slower.precision == "fp32" and slower.path == out
    assert slower.reason.startswith("fp32: int8 only 1.01x as fast on this CPU with 2 threads")
    assert calls == [1, 2]  # another thread count is another decision
    assert len(list((cache / "int8").glob("*.json"))) == 2


def test_runtime_ignores_a_missing_or_stale_int8_copy(exported, cache, tmp_path):
    out, _ = exported
    spec = inspect_onnx(out)
    alone = tmp_path / "alone.onnx"
    shutil.copyfile(out, alone)
    missing = choice.choose_precision(alone, spec, 1, timer=_timer(10.0, 1.0, []))
    assert missing.precision == "fp32" and "no INT8 copy alone.int8.onnx" in missing.reason
    with pytest.raises(UserInputError, match="--int8: alone.onnx has no INT8 copy"):
        choice.choose_precision(alone, spec, 1, int8=True)
    shutil.copyfile(int8_path(out), int8_path(alone))
    changed = onnx.load(str(out))  # the FP32 file is exported again after its INT8 copy
    changed.doc_string = "another export"
    onnx.save(changed, str(alone))
    stale = choice.choose_precision(alone, spec, 1, timer=_timer(10.0, 1.0, []))
    assert stale.precision == "fp32" and "another version of alone.onnx" in stale.reason
    forced = choice.choose_precision(out, spec, 1, int8=True)
    assert forced.precision == "int8" and forced.fp32_ms is None  # forced: nothing timed
    assert choice.choose_precision(out, spec, 1, int8=False).precision == "fp32"


def test_run_statistics_say_which_precision_ran_and_why(exported, cache, tmp_path,
                                                       monkeypatch):
    out, _ = exported
    monkeypatch.setattr(choice, "time_pair", _timer(12.0, 6.0, []))
    source = "synthetic://?frames=3&size=320x240"
    for flags, precision, why in (((), "int8", "int8: 2.00x faster than fp32"),
                                  (("--no-int8",), "fp32", "fp32: --no-int8")):
        stats = tmp_path / f"stats{len(flags)}.json"
        result = run_main("run", "--model", str(out), "--source", source, "--tracker", "none",
                          "--threads", "1", "--stats-json", str(stats), *flags)
        assert result.returncode == 0, result.stderr
        model = json.loads(stats.read_text())["model"]
        assert model["precision"] == precision and model["precision_choice"].startswith(why)
        assert f"({precision})" in model["backend"]


def test_the_default_model_ships_a_checked_int8_copy_of_its_own_weights(cache, tmp_path):
    from detstream.engines.zoo.resolve import resolve_model

    source = resolve_model("default")
    shipped, why_not = choice.checked_checkpoint_int8(source.path, 416, max_batch=4)
    assert shipped == source.path.with_name("default.int8.onnx"), why_not
    record = int8_record(shipped)
    # Retraining the default model without exporting its INT8 copy again fails here.
    assert record["checkpoint_sha256"] == file_sha256(source.path)
    assert record["map50_95_fp32"] - record["map50_95_int8"] <= 0.01
    assert record["check_images"] >= 500
    # The runtime takes it for the checkpoint when it is faster, at the run's batch.
    spec = inspect_onnx(shipped)
    export = tmp_path / "default_416_fp32.onnx"  # stands for the cache's FP32 export (timer
    export.write_bytes(b"fp32")                   # below is scripted: only its hash is read)
    picked = choice.choose_precision(export, spec, 2,
                                     timer=_timer(30.0, 15.0, []), checkpoint=source.path,
                                     max_batch=4)
    assert picked.precision == "int8" and picked.path == shipped
    small, why = choice.checked_checkpoint_int8(source.path, 320)
    assert small is None and "takes 416x416 input, not 320x320" in why
    big, why = choice.checked_checkpoint_int8(source.path, 416, max_batch=16)
    assert big is None and "batches of up to 8, not 16" in why


def test_an_int8_copy_beside_another_checkpoint_version_is_ignored(exported, cache, tmp_path):
    from detstream.engines.zoo.resolve import resolve_model

    default = resolve_model("default").path
    record = int8_record(int8_path(exported[0]))  # exported from the default checkpoint
    assert record["checkpoint_file"] == "default.safetensors"
    assert record["checkpoint_sha256"] == file_sha256(default)
    retrained = tmp_path / "best.safetensors"
    retrained.write_bytes(default.read_bytes() + b" ")  # other bytes: another version
    shutil.copyfile(int8_path(exported[0]), tmp_path / "best.int8.onnx")
    found, why = choice.checked_checkpoint_int8(retrained, 320)
    assert found is None and "made from another version of best.safetensors" in why
    spec = inspect_onnx(exported[0])
    with pytest.raises(UserInputError, match="--int8: best.safetensors has .*another version"):
        choice.choose_precision(exported[0], spec, 1, int8=True, checkpoint=retrained)


@pytest.mark.parametrize(("int8_ms", "one_thread"), [(15.0, True), (30.0, False)])
def test_a_live_camera_gets_one_inference_thread_when_one_call_fits_its_frame_interval(
        cache, tmp_path, monkeypatch, int8_ms, one_thread):
    from detstream.stream.pipeline.threads import one_thread_fits

    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the 2-core machine this is about
    assert one_thread_fits(24.0, 30.0) and not one_thread_fits(26.0, 30.0)
    assert one_thread_fits(24.0, None) and one_thread_fits(36.0, 20.0)
    monkeypatch.setattr(choice, "time_pair", _timer(40.0, int8_ms, []))
    stats = tmp_path / "stats.json"
    result = run_main("run", "--source", "synthetic://?frames=6&size=320x240&fps=30&live=1",
                      "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    model = json.loads(stats.read_text())["model"]
    assert model["precision"] == "int8"
    # 15 ms of a 33 ms frame interval: one thread; 30 ms: every core, as before.
    assert ("[CPU, 1 thread]" in model["backend"]) == one_thread, model["backend"]
    assert ("inference: one thread, a call takes" in result.stderr) == one_thread
