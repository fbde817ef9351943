"""Checkpoints round-trip without pickle, and damaged ones give one clear error."""

from __future__ import annotations

import json

import pytest
import torch

from detstream.engines.errors import UserInputError
from detstream.engines.models import Detector
from detstream.engines.models.checkpoint import load_checkpoint, save_checkpoint
from detstream.engines.spec import ModelSpec

SPEC = ModelSpec(name="detstream-n", class_names=("a", "b", "c"), input_size=(256, 256))


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = Detector("n", num_classes=3).eval()
    path = save_checkpoint(tmp_path / "best.safetensors", model, SPEC,
                           info={"metrics": {"map50": 0.5}, "epoch": 3})
    return model, path


def test_round_trip(saved):
    model, path = saved
    loaded, spec, sidecar = load_checkpoint(path)
    assert spec == SPEC and sidecar["metrics"]["map50"] == 0.5 and sidecar["epoch"] == 3
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert path.with_suffix(".json").is_file()


def test_truncated_weights_give_one_clear_error(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_mismatched_architecture_is_named(saved, tmp_path):
    _, path = saved
    sidecar = json.loads(path.with_suffix(".json").read_text())
    sidecar["size"] = "s"
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(UserInputError, match="does not match its architecture"):
        load_checkpoint(path)


def test_missing_files(tmp_path, saved):
    with pytest.raises(UserInputError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    _, path = saved
    path.with_suffix(".json").unlink()
    with pytest.raises(UserInputError, match="has no sidecar"):
        load_checkpoint(path)


def test_half_checkpoint_is_half_the_size_and_loads_as_fp32(saved, tmp_path):
    model, full = saved
    half = save_checkpoint(tmp_path / "half.safetensors", model, SPEC, half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded, _, sidecar = load_checkpoint(half)
    assert sidecar["weights_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        ref, got = model(x), loaded(x)
    # Boxes in pixels and sigmoid scores stay close after FP16 rounding of the weights.
    torch.testing.assert_close(got[:, :4], ref[:, :4], atol=0.5, rtol=0.01)
    torch.testing.assert_close(got[:, 4:], ref[:, 4:], atol=0.01, rtol=0.01)
