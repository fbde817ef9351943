"""Mixed-precision training: which dtype each device gets, and a float32 head under autocast."""

from __future__ import annotations

import torch

from detstream.engines.models import Detector
from detstream.engines.train.precision import autocast_dtype, cpu_has_native_bf16


def test_autocast_dtype_per_device():
    assert autocast_dtype(torch.device("cuda"), amp=True) is torch.float16
    assert autocast_dtype(torch.device("cuda"), amp=False) is None
    assert autocast_dtype(torch.device("cpu"), amp=False) is None
    expected = torch.bfloat16 if cpu_has_native_bf16() else None
    assert autocast_dtype(torch.device("cpu"), amp=True) is expected


def test_head_stays_float32_under_bf16_autocast():
    torch.manual_seed(0)
    model = Detector("n", num_classes=3).train()
    images = torch.rand(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images)
        stem = model.backbone(images)
    # The backbone really ran in bf16, the head's logits did not.
    assert any(t.dtype is torch.bfloat16 for t in stem)
    assert out.box.dtype is torch.float32 and out.cls.dtype is torch.float32
    plain = model(images)
    assert torch.allclose(out.cls, plain.cls, atol=0.5)  # bf16 features: close, not equal
    assert not torch.equal(out.cls, plain.cls)
