"""Recorded model outputs replayed with a fixed inference time: the same detections as the
real model, each call waits its time, and inputs never recorded are refused."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from detstream.engines.data.synthetic import SceneConfig, SyntheticScene
from detstream.engines.predict import Predictor
from detstream.engines.runtime.replay import RecordingBackend, ReplayBackend, fingerprint
from detstream.engines.runtime.select import open_backend


@pytest.fixture(scope="module")
def frames():
    scene = SyntheticScene(SceneConfig(width=416, height=234, frames=6, seed=8, min_size=36))
    return [image for image, _ in scene]


def test_replay_gives_the_recorded_detections_after_its_time(frames):
    recorder = RecordingBackend(open_backend("default", "onnxruntime", imgsz=320, threads=1))
    real = Predictor(recorder)(frames)
    replay = ReplayBackend(recorder, infer_ms=20)
    predictor = Predictor(replay)
    for frame, want in zip(reversed(frames), reversed(real), strict=True):  # any order
        start = time.perf_counter()
        (got,) = predictor([frame])
        assert time.perf_counter() - start >= 0.020
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.class_ids, want.class_ids)
    assert replay.calls == len(frames)
    assert sum(len(d) for d in real) > 0


def test_an_input_never_recorded_is_refused(frames):
    recorder = RecordingBackend(open_backend("default", "onnxruntime", imgsz=320, threads=1))
    Predictor(recorder)(frames[:2])
    replay = ReplayBackend(recorder, infer_ms=1)
    batch, _ = Predictor(replay).preprocess(frames[3:4])
    with pytest.raises(KeyError, match="was not recorded"):
        replay.infer(batch)


def test_fingerprints_tell_frames_apart_and_ignore_the_batch_axis(frames):
    predictor = Predictor(open_backend("default", "onnxruntime", imgsz=320, threads=1))
    batches = [predictor.preprocess([frame])[0] for frame in frames]
    keys = {fingerprint(batch) for batch in batches}
    assert len(keys) == len(frames)
    assert fingerprint(batches[0]) == fingerprint(batches[0][0])
    assert fingerprint(batches[0]) != fingerprint(batches[0] + torch.rand_like(batches[0]))
