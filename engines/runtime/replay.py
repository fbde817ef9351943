"""A backend that replays recorded model outputs with a fixed inference time.

``bench pipeline --replay-ms T`` records what the real model returns for every frame once,
then runs the pipeline on :class:`ReplayBackend`, which returns the recorded output for each
input after ``T`` ms of waiting, as a GPU engine would (the calling thread sleeps and holds
no CPU, like a thread waiting on a CUDA stream). The rest of the pipeline (decode,
preprocessing, post-processing, tracking, drawing, encoding) then runs exactly as it would
next to a TensorRT FP16 engine that takes ``T`` ms, on a machine that has none.

Inputs are recognised by a fingerprint of a sparse grid of their values, so concurrent calls
in any order get their own frame's output.
"""

from __future__ import annotations

import hashlib
import threading
import time

import torch

from detstream.engines.runtime.base import Backend

#: Every n-th row and column of the input is fingerprinted.
_STRIDE = 8


def fingerprint(batch: torch.Tensor) -> bytes:
    """A short digest of one input image ([3, H, W] or [1, 3, H, W])."""
    sample = batch.reshape(-1, *batch.shape[-3:])[0, :, ::_STRIDE, ::_STRIDE]
    return hashlib.blake2b(sample.contiguous().cpu().numpy().tobytes(), digest_size=16).digest()


class RecordingBackend(Backend):
    """Wraps a real backend and keeps each input's raw output (one image per call)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name, self.spec, self.device = inner.name, inner.spec, inner.device
        self.dtype, self.max_batch = inner.dtype, 1
        self.outputs: dict[bytes, torch.Tensor] = {}
        self._lock = threading.Lock()

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        raw = self.inner.infer(batch)
        with self._lock:
            self.outputs[fingerprint(batch)] = raw.detach().clone()
        return raw


class ReplayBackend(Backend):
    """Return recorded outputs after ``infer_ms`` of waiting.

    Args:
        recorded: what a :class:`RecordingBackend` kept, for the same model.
        infer_ms: the inference time to pretend (milliseconds per call).
        concurrent: calls that may wait at once (a GPU with one engine context: 1).

    Raises (from :meth:`infer`):
        KeyError: an input that was never recorded.
    """

    name = "replay"
    #: CPU threads a call keeps busy: none (it waits, as for a GPU engine).
    threads = 0

    def __init__(self, recorded: RecordingBackend, infer_ms: float, concurrent: int = 1) -> None:
        self.outputs = recorded.outputs
        self.spec, self.device, self.dtype = recorded.spec, recorded.device, recorded.dtype
        self.max_batch = 1
        self.infer_ms = infer_ms
        self._engine = threading.Semaphore(max(1, concurrent))
        self.calls = 0

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        key = fingerprint(batch)
        raw = self.outputs.get(key)
        if raw is None:
            raise KeyError("replay: this input was not recorded (record the same frames with "
                           "the same preprocessing first)")
        with self._engine:  # one engine: calls queue as they would on the GPU
            deadline = time.perf_counter() + self.infer_ms / 1000.0
            while (left := deadline - time.perf_counter()) > 0:
                time.sleep(left)
            self.calls += 1
        return raw

    def describe(self) -> str:
        return f"replayed outputs, {self.infer_ms:g} ms per call"
