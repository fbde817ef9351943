"""Which mixed precision a training run uses on its device.

CUDA trains in float16 with a gradient scaler (as Ultralytics and torchvision's references do).
CPUs with native bfloat16 instructions (x86 AVX512-BF16 or AMX, Arm BF16) train under bfloat16
autocast: backbone and neck convolutions run in bf16 through oneDNN, while the detection head
and the loss stay in float32 (:meth:`detstream.engines.models.yolo.Detector.forward`). bf16 keeps
float32's
exponent range, so no gradient scaler is needed. On the 2-core EPYC a forward + backward pass +
loss of the ``n`` model at 320, batch 16, goes from 37.7 to 57.6 images/s (68.4 with the head in
bf16 too, but that cost an eight-image overfit run 0.14 of its mAP50).
CPUs without the instructions would only emulate bf16, which is slower, so they stay in float32.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

import torch

# /proc/cpuinfo flags that mean the CPU multiplies bfloat16 natively.
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU has bfloat16 instructions (read from ``/proc/cpuinfo`` on Linux)."""
    if platform.system() != "Linux":
        return False
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return bool(_BF16_FLAGS & set(value.split()))
    return False


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype for training on ``device``, or None for plain float32."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None
