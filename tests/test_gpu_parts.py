"""The GPU-side code's logic that runs without a GPU: TensorRT engine profiles, cache keys and
files, output buffers, device checks, the build command's batch, GPU preprocessing's resize
weights, the FP16 parity rule, and the GPU check's answer on a machine without CUDA.

(TensorRT and CUDA cannot run here; what needs them is measured by scripts/gpu_check.sh.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from detstream.engines.cache import atomic_output, write_atomic
from detstream.engines.errors import UserInputError
from detstream.engines.export.onnx import export_onnx
from detstream.engines.export.parity import compare_detections, sample_frames
from detstream.engines.process.letterbox import resize
from detstream.engines.process.preprocess import Preprocessor, area_weights
from detstream.engines.runtime.tensorrt_backend import buffer_layout
from detstream.engines.spec import ModelSpec
from detstream.engines.tensorrt import builder
from detstream.engines.tensorrt.builder import EngineKey, cuda_variant, require_cuda
from detstream.engines.tensorrt.profile import engine_io
from detstream.engines.zoo import DEFAULT_WEIGHTS, load_model
from detstream.stream.commands.build import batch_range
from tests.conftest import REPO, run_cli, run_main, shared_path

needs_default = pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(),
                                   reason="the embedded default model is not built yet")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The default model exported with a fixed batch of 1 and with a dynamic batch."""
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the embedded default model is not built yet")
    root = tmp_path_factory.mktemp("onnx")
    model, spec, _ = load_model(DEFAULT_WEIGHTS)
    fixed, _ = export_onnx(model, spec, root / "fixed.onnx", 128, max_batch=1)
    dynamic, _ = export_onnx(model, spec, root / "dynamic.onnx", 128, max_batch=4)
    return fixed, dynamic


def test_a_dynamic_batch_gets_a_profile_of_one_to_the_batch_asked(exports):
    _, dynamic = exports
    io = engine_io(dynamic, 8)
    assert io.batch == (1, 8, 8) and not io.fixed_batch
    assert io.input_size == (128, 128) and io.input_name == "images"
    assert io.output_names == ("output",)


def test_a_fixed_batch_in_the_file_is_kept_whatever_is_asked(exports):
    fixed, _ = exports
    for wanted in (1, 8):
        io = engine_io(fixed, wanted)
        assert io.batch == (1, 1, 1) and io.fixed_batch


def test_an_imported_model_with_a_fixed_batch_keeps_it():
    path = shared_path("models/yolox_nano/yolox_nano.onnx")
    io = engine_io(path, 8)
    assert io.fixed_batch and io.batch[0] == io.batch[2]
    assert io.input_size == (416, 416)


def test_exports_leave_no_temporary_files(exports):
    fixed, _ = exports
    assert sorted(p.name for p in fixed.parent.iterdir()) == ["dynamic.onnx", "fixed.onnx"]


def _key(gpu: str = "NVIDIA GeForce RTX 4090", capability: str = "89",
         batch: tuple[int, int, int] = (1, 8, 8), cuda: str = "cu12") -> EngineKey:
    return EngineKey("ab" * 32, "10.13.0", cuda, gpu, capability, "fp16", batch, (416, 416))


def test_engine_and_timing_cache_names_hold_gpu_cuda_and_profile():
    key = _key()
    assert key.file_name() == ("abababababababab_trt10.13.0_cu12_nvidia-geforce-rtx-4090_sm89_"
                               "fp16_b1-8-8_416x416.engine")
    # Two GPUs of one architecture never share timing caches; one GPU shares them.
    assert _key().timing_cache_name() != _key(gpu="NVIDIA L40").timing_cache_name()
    assert _key().timing_cache_name() == _key(batch=(1, 1, 1)).timing_cache_name()
    assert _key().file_name() != _key(cuda="cu13").file_name()
    assert _key().timing_cache_name() != _key(cuda="cu13").timing_cache_name()


@pytest.mark.parametrize("names, variant", [
    (["numpy", "tensorrt-cu12"], "cu12"),
    (["tensorrt_cu13_libs", "torch"], "cu13"),
    (["tensorrt-cu12-bindings"], "cu12"),
    (["tensorrt"], "cu-unknown"),
    ([], "cu-unknown"),
])
def test_the_cuda_variant_of_tensorrt_comes_from_its_wheels(names, variant):
    assert cuda_variant(names) == variant


@pytest.mark.parametrize("device", ["cpu", "cpu:0"])
def test_tensorrt_refuses_the_cpu_with_one_clear_line(device):
    with pytest.raises(UserInputError, match="TensorRT runs on NVIDIA GPUs only"):
        require_cuda(device)


def test_tensorrt_refuses_a_device_that_is_not_one():
    with pytest.raises(UserInputError, match="is not a device"):
        require_cuda("gpu7")


def test_every_output_type_gets_a_buffer_of_its_size():
    assert buffer_layout("HALF", (1, 84, 3549)) == (torch.float16, (1, 84, 3549))
    assert buffer_layout("BOOL", (1, 5)) == (torch.bool, (1, 5))
    assert buffer_layout("INT64", (2,)) == (torch.int64, (2,))
    assert buffer_layout("FP8", (4, 4)) == (torch.uint8, (4, 4))
    assert buffer_layout("INT4", (3, 3)) == (torch.uint8, (5,))  # two values a byte
    with pytest.raises(RuntimeError, match="unresolved"):
        buffer_layout("FLOAT", (1, -1))
    with pytest.raises(UserInputError, match="not supported"):
        buffer_layout("COMPLEX", (1,))


@pytest.mark.parametrize("text, batch", [("1", 1), ("8", 8), ("1-8", 8)])
def test_build_batches_always_start_at_one(text, batch):
    assert batch_range(text) == batch


def test_a_build_batch_not_starting_at_one_is_refused_with_the_fix():
    result = run_cli("build", "--model", "default", "--batch", "2-8")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pass --batch 8" in result.stderr


class _TimingConfig:
    """Stands in for ``IBuilderConfig``'s timing-cache calls, as pyCoreDoc.h documents them:
    ``create_timing_cache(b"")`` makes a fresh cache, ``set_timing_cache`` returns ``False``
    when the cache belongs to another device, ``get_timing_cache`` may return ``None``."""

    def __init__(self, good: bytes, damaged: bytes = b"") -> None:
        self.good, self.damaged, self.attached = good, damaged, None

    def create_timing_cache(self, data: bytes):
        if data and data == self.damaged:
            raise RuntimeError("invalid timing cache")
        return {"data": data}

    def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
        if cache["data"] not in (b"", self.good):
            return False  # another device's cache
        self.attached = cache
        return True

    def get_timing_cache(self):
        return None if self.attached is None else type("Cache", (), {
            "serialize": lambda _: b"timings"})()


@pytest.mark.parametrize("saved, reused", [
    (b"mine", True),            # this GPU's cache is used
    (b"another GPU's", False),  # set_timing_cache returns False: a fresh one
    (b"\x00damaged", False),    # creating it raises: a fresh one
])
def test_the_timing_cache_falls_back_to_a_fresh_one(tmp_path, saved, reused):
    path = tmp_path / "timing.cache"
    path.write_bytes(saved)
    config, messages = _TimingConfig(b"mine", damaged=b"\x00damaged"), []
    builder._attach_timing_cache(config, path, messages.append)
    assert config.attached["data"] == (saved if reused else b"")
    assert bool(messages) != reused
    builder._save_timing_cache(config, path, messages.append)
    assert path.read_bytes() == b"timings"


def test_a_missing_timing_cache_is_not_saved_and_does_not_fail(tmp_path):
    config = _TimingConfig(b"")
    config.attached = None
    builder._save_timing_cache(config, tmp_path / "timing.cache", print)
    assert not (tmp_path / "timing.cache").exists()


def test_atomic_writes_replace_whole_files_and_leave_nothing_on_failure(tmp_path):
    target = tmp_path / "model.engine"
    write_atomic(target, b"old")
    with pytest.raises(ValueError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise ValueError("the build broke")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.engine"]
    # Two writers of one entry each get their own temporary file.
    with atomic_output(target) as first, atomic_output(target) as second:
        assert first != second
        first.write_bytes(b"one")
        second.write_bytes(b"two")
    assert target.read_bytes() in (b"one", b"two")
    assert [p.name for p in tmp_path.iterdir()] == ["model.engine"]


@pytest.mark.parametrize("size, new_size", [
    ((720, 1280), (360, 640)), ((720, 1280), (234, 416)), ((1080, 1920), (360, 640)),
    ((1080, 1920), (234, 416)), ((700, 1000), (448, 640)), ((479, 641), (478, 640)),
    ((272, 640), (177, 416)), ((240, 320), (312, 416)),
])
def test_the_gpu_resize_matches_the_cpu_one(size, new_size):
    """The GPU path's resize, run here on the CPU's torch, against the CPU letterbox's
    (INTER_AREA below 2x, bilinear then 2x2 means from 2x, bilinear when enlarging)."""
    (h, w), (nh, nw) = size, new_size
    frame = sample_frames(2, w, h)[1]
    expected = resize(frame, (nw, nh)).astype(np.float32)
    spec = ModelSpec(name="m", class_names=("a",), input_size=(416, 416))
    image = torch.from_numpy(frame).permute(2, 0, 1).float()
    resized = Preprocessor(spec, "cpu")._resize(image, nw, nh).permute(1, 2, 0).numpy()
    assert resized.shape == expected.shape
    assert np.abs(resized - expected).max() <= 1.0
    assert np.allclose(area_weights(w, nw).sum(dim=1), 1.0) or nw > w


def test_large_shrinks_stay_close_to_inter_area():
    """The fast large shrink averages areas: it is near INTER_AREA, and far nearer than
    plain bilinear sampling (which aliases)."""
    frame = sample_frames(2, 1920, 1080)[1]
    exact = cv2.resize(frame, (416, 234), interpolation=cv2.INTER_AREA).astype(np.float32)
    fast = np.abs(resize(frame, (416, 234)) - exact).mean()
    linear = np.abs(cv2.resize(frame, (416, 234), interpolation=cv2.INTER_LINEAR) - exact)
    assert fast < 1.5
    assert fast < 0.5 * linear.mean()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_gpu_preprocessing_agrees_with_the_cpu_to_one_level():
    spec = ModelSpec(name="m", class_names=("a",), input_size=(416, 416))
    frames = sample_frames(2, 1280, 720)
    cpu, _ = Preprocessor(spec, "cpu")(frames)
    gpu, _ = Preprocessor(spec, "cuda")(frames)
    assert float((gpu.cpu() - cpu).abs().max()) <= 1.0 / 255 + 1e-6


@needs_default
def test_fp16_parity_allows_sub_pixel_moves_and_catches_real_ones():
    from detstream.engines.runtime.select import open_backend

    backend = open_backend("default", "torch", "cpu", imgsz=320)
    batch, _ = Preprocessor(backend.spec)(sample_frames(4))
    raw = backend.infer(batch)
    moved = raw.clone()
    moved[:, :2] += 0.3  # every centre moves by 0.3 px: small boxes lose IoU, nothing else
    report = compare_detections(raw, moved, backend.spec, 4)
    assert report.passed and report.min_iou < 0.98
    assert report.max_corner_px == pytest.approx(0.3, abs=1e-3)
    moved[:, :2] += 1.7
    assert not compare_detections(raw, moved, backend.spec, 4).passed


def test_cuda_graphs_on_the_cpu_are_refused_with_one_clear_line():
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the embedded default model is not built yet")
    from detstream.engines.runtime.select import open_backend

    with pytest.raises(UserInputError, match="CUDA graphs need a CUDA device"):
        open_backend("default", "torch", "cpu", cuda_graph=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible here")
def test_the_gpu_check_without_a_gpu_says_nothing_was_measured(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "no CUDA device: nothing measured"
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["result"] == "no CUDA device: nothing measured"
    assert "tensorrt" in report["environment"]["backends"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible here")
@pytest.mark.parametrize("args, message", [
    ([], "--cuda-graph applies to the torch and tensorrt backends"),
    (["--backend", "torch"], "CUDA graphs need a CUDA device"),
])
def test_cuda_graphs_where_they_cannot_run_are_one_line(tmp_path, args, message):
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the embedded default model is not built yet")
    result = run_main("run", "--cuda-graph", "--max-frames", "2", "--output",
                      str(tmp_path / "out.mp4"), *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_processes_starting_together_export_a_model_once(tmp_path):
    """Fleet workers open the same model at once: the cache lock makes one export it and the
    others use that file (the TensorRT builder takes the same lock around a build)."""
    script = ("from detstream.engines.runtime.select import open_backend\n"
              "open_backend('default', 'onnxruntime', 'cpu', imgsz=96, log=print).close()\n")
    env = {**os.environ, "DETSTREAM_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
            for _ in range(3)]
    outputs = [run.communicate(timeout=240) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-500:] for _, err in outputs]
    exports = sum(out.count("exporting default to ONNX") for out, _ in outputs)
    assert exports == 1, [out for out, _ in outputs]
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 1
