"""Export parity, backends agreeing, shared preprocessing, model errors, YOLOX-Nano on COCO128,
and TensorRT where it exists."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from detstream.engines.errors import UserInputError
from detstream.engines.export.metadata import load_onnx, read_metadata, spec_from_metadata
from detstream.engines.export.parity import sample_frames
from detstream.engines.predict import Predictor
from detstream.engines.process.letterbox import letterbox
from detstream.engines.process.preprocess import Preprocessor
from detstream.engines.runtime.select import open_backend
from detstream.engines.spec import ModelSpec
from detstream.engines.zoo import DEFAULT_WEIGHTS, load_model
from tests.conftest import run_cli, run_main, shared_path

needs_default = pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(),
                                   reason="the embedded default model is not built yet")


def _tensorrt_missing() -> str:
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:
        return f"TensorRT is not importable here ({type(exc).__name__})"
    if not torch.cuda.is_available():
        return "no CUDA device here"
    return ""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Exports and engines of this module go to a fresh cache folder."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DETSTREAM_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def frames():
    return sample_frames(4)


@needs_default
@pytest.mark.parametrize("half", [False, True])
def test_export_checks_parity_and_writes_the_contract(tmp_path, half):
    out = tmp_path / "model.onnx"
    args = ["export", "--model", "default", "--out", str(out)] + (["--half"] if half else [])
    result = run_main(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.splitlines()[0]
    assert ("FP16 parity" if half else "FP32 parity") in line and line.endswith("ok")
    if half:  # real detections were compared, not an empty set
        matched, total = line.split(": ")[1].split(" ")[0].split("/")
        assert int(total) >= 10 and matched == total
    metadata = read_metadata(load_onnx(out))
    _, spec, _ = load_model("default")
    assert spec_from_metadata(metadata) == spec
    extra = json.loads(metadata["detstream"])
    assert extra["precision"] == ("fp16" if half else "fp32")
    assert metadata["names"] == str(dict(enumerate(spec.class_names)))


@needs_default
def test_torch_and_onnxruntime_agree_after_nms(cache, frames):
    torch_dets = Predictor(open_backend("default", "torch", "cpu"))(frames)
    # FP32 on both sides (the shipped INT8 copy would be chosen on a CPU it speeds up).
    ort_dets = Predictor(open_backend("default", "onnxruntime", "cpu", int8=False))(frames)
    total = 0
    for a, b in zip(torch_dets, ort_dets, strict=True):
        assert len(a) == len(b)
        total += len(a)
        if len(a):
            iou = box_iou(torch.from_numpy(a.boxes), torch.from_numpy(b.boxes)).diagonal()
            assert float(iou.min()) > 0.999
            np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
            assert (a.class_ids == b.class_ids).all()
    assert total >= 10  # the default model finds the rendered objects


def test_cpu_preprocessing_follows_the_contract():
    spec = ModelSpec(name="m", class_names=("a",), input_size=(64, 64), colour="rgb",
                     scale=1 / 255, mean=(0.5, 0.25, 0.0), std=(0.5, 0.5, 1.0),
                     letterbox="topleft", pad_value=0)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (32, 64, 3), np.uint8)  # BGR, exactly half size: no resize
    batch, (box,) = Preprocessor(spec, frame_colour="bgr")([frame])
    assert batch.shape == (1, 3, 64, 64) and batch.dtype == torch.float32
    padded, _ = letterbox(frame[..., ::-1].copy(), (64, 64), 0, "topleft")
    x = padded.astype(np.float32).transpose(2, 0, 1) / 255
    expected = (x - np.array(spec.mean)[:, None, None]) / np.array(spec.std)[:, None, None]
    np.testing.assert_allclose(batch[0].numpy(), expected, atol=1e-6)
    assert (box.ratio, box.pad_x, box.pad_y) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize("args, message", [
    (["--model", "missing.onnx"], "does not exist"),
    (["--model", "nope.safetensors"], "neither a model name (detstream models lists them) nor"),
    (["--model", "default", "--backend", "tensorrt"], "TensorRT is not installed"),
    (["--model", "default", "--backend", "torch", "--device", "cuda"], "use --device cpu"),
])
def test_backend_mistakes_are_one_line(tmp_path, args, message):
    if "tensorrt" in args and not _tensorrt_missing():
        pytest.skip("TensorRT runs here")
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("CUDA runs here")
    if "default" in args and not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the embedded default model is not built yet")
    result = run_main("bench", "engine", "--seconds", "0.1", *args)
    assert result.returncode == 2
    lines = [line for line in (result.stdout + result.stderr).splitlines()
             if "error" in line or "skipped" in line]
    assert any(message in line for line in lines), result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_build_without_tensorrt_is_one_line():
    if not _tensorrt_missing():
        pytest.skip("TensorRT runs here")
    result = run_cli("build", "--model", "default")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "detstream build: error:" in result.stderr


def test_onnx_on_the_torch_backend_is_refused(tmp_path):
    path = shared_path("models/yolox_nano/yolox_nano.onnx")
    with pytest.raises(UserInputError, match="torch backend runs detstream checkpoints"):
        open_backend(path, "torch")


def test_yolox_nano_on_coco128_matches_the_reference(tmp_path):
    model = shared_path("models/yolox_nano/yolox_nano.onnx")
    names = shared_path("models/yolox_nano/coco_classes.txt")
    data = shared_path("coco128/data.yaml")
    out = tmp_path / "val.json"
    result = run_main("val", "--model", str(model), "--names", str(names), "--data", str(data),
                     "--split", "train", "--batch", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(out.read_text())
    assert metrics["images"] == 128
    # 0.332: onnxruntime with a reference decoder (../shared/data/README.md).
    assert abs(metrics["map50_95"] - 0.332) <= 0.015, metrics["map50_95"]


@pytest.mark.skipif(bool(_tensorrt_missing()), reason=_tensorrt_missing() or "runs")
@needs_default
def test_tensorrt_fp16_engine_matches_torch(cache, frames):
    trt_dets = Predictor(open_backend("default", "tensorrt", max_batch=4))(frames)
    ref_dets = Predictor(open_backend("default", "torch", "cuda", half=False))(frames)
    for a, b in zip(ref_dets, trt_dets, strict=True):
        if len(a) and len(b):
            iou = box_iou(torch.from_numpy(a.boxes), torch.from_numpy(b.boxes))
            assert float(iou.max(dim=1).values.min()) >= 0.98
    # A second open finds the engine in the cache.
    assert list((cache / "engines").glob("*.engine"))
