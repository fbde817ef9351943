"""The inference service: results through it equal results without it, frame for frame;
several workers keep frame order; batches from several streams split back per request; a
failed engine call fails the run with the infer stage named."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
import pytest
import torch

from detstream.engines.data.synthetic import SceneConfig, SyntheticScene
from detstream.engines.data.synthetic.sequence import write_sequence
from detstream.engines.predict import Predictor
from detstream.engines.runtime.select import open_backend
from detstream.stream.pipeline.runner import Pipeline, PipelineOptions, StageError
from detstream.stream.pipeline.service import InferenceService
from detstream.stream.sources import open_source
from detstream.stream.track import make_tracker
from tests.helpers.tiny import FailingBackend


@pytest.fixture(scope="module")
def backend():
    """The embedded default model at 320 on onnxruntime, one thread per call."""
    return open_backend("default", "onnxruntime", "cpu", imgsz=320, max_batch=4, threads=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip")
    write_sequence(out, SceneConfig(width=480, height=270, fps=25, frames=40, seed=11,
                                    objects=6, min_size=40))
    return out / "video.mp4"


def _frames(count: int, seed: int = 4) -> list[np.ndarray]:
    scene = SyntheticScene(SceneConfig(width=480, height=270, frames=count, seed=seed))
    return [image for image, _ in scene]


def test_service_outputs_equal_direct_calls(backend):
    predictor = Predictor(backend)
    batches = [predictor.preprocess([frame])[0] for frame in _frames(6)]
    expected = [backend.infer(batch) for batch in batches]
    with InferenceService(workers=2) as service:
        futures = [service.submit(backend, batch) for batch in batches]
        results = [future.result(timeout=60) for future in futures]
    for result, want in zip(results, expected, strict=True):
        torch.testing.assert_close(result.raw, want, rtol=1e-4, atol=1e-3)
        assert result.batch_size == 1 and result.infer_ms > 0


def test_batches_from_several_streams_split_back_per_request(backend):
    predictor = Predictor(backend)
    batches = [predictor.preprocess([frame])[0] for frame in _frames(8, seed=5)]
    expected = [backend.infer(batch) for batch in batches]
    with InferenceService(workers=1, max_batch=4, collect_ms=200) as service:
        for stream in range(4):  # four streams are active
            service.submit(backend, batches[stream], stream).result(timeout=60)
        futures = [service.submit(backend, batch, stream=i % 4)
                   for i, batch in enumerate(batches)]
        results = [future.result(timeout=60) for future in futures]
        stats = service.stats.report()
    for result, want in zip(results, expected, strict=True):
        # a batch of four runs other kernels than a batch of one: equal to float tolerance
        torch.testing.assert_close(result.raw, want, rtol=1e-3, atol=2e-2)
    assert stats["largest_batch"] == 4
    assert stats["frames"] == 12 and stats["engine_calls"] < 12


def test_a_quiet_stream_does_not_hold_a_batch_back(backend):
    predictor = Predictor(backend)
    batch = predictor.preprocess(_frames(1)[0:1])[0]
    with InferenceService(workers=1, max_batch=4, collect_ms=400) as service:
        service.submit(backend, batch, stream=0).result(timeout=60)
        service.submit(backend, batch, stream=1).result(timeout=60)
        time.sleep(1.1)  # stream 1 goes quiet; stream 0 alone is active
        started = time.perf_counter()
        result = service.submit(backend, batch, stream=0).result(timeout=60)
        waited = time.perf_counter() - started
    assert result.batch_size == 1
    assert result.wait_ms < 100 and waited < 0.4


def _run(model_backend, clip, workers: int) -> list[tuple]:
    """Boxes, scores, classes and track ids of every frame of ``clip``."""
    source = open_source(str(clip))
    pipeline = Pipeline(source, Predictor(model_backend, conf=0.2),
                        make_tracker("botsort", source.fps or 25),
                        options=PipelineOptions(inference_workers=workers))
    frames = []
    for packet in pipeline:
        dets = packet.detections
        frames.append((packet.index, dets.boxes.copy(), dets.scores.copy(),
                       dets.class_ids.copy(), dets.track_ids.copy()))
    return frames


def test_several_workers_give_the_same_results_frame_for_frame(backend, clip):
    one = _run(backend, clip, workers=1)
    three = _run(backend, clip, workers=3)
    assert [frame[0] for frame in three] == list(range(40))
    assert len(one) == len(three) == 40
    tracked = 0
    for a, b in zip(one, three, strict=True):
        assert a[0] == b[0]
        np.testing.assert_allclose(a[1], b[1], atol=1e-3)
        np.testing.assert_allclose(a[2], b[2], atol=1e-4)
        np.testing.assert_array_equal(a[3], b[3])
        np.testing.assert_array_equal(a[4], b[4])
        tracked += int((a[4] >= 0).sum())
    assert tracked > 80  # the clip's objects are found and tracked, with ids


def test_a_failed_engine_call_fails_the_infer_stage(backend, clip):
    source = open_source(str(clip))
    pipeline = Pipeline(source, Predictor(FailingBackend(backend, fail_on=3)),
                        options=PipelineOptions(inference_workers=2))
    with pytest.raises(StageError, match="the infer stage failed: RuntimeError: engine lost"):
        pipeline.run()
    assert pipeline.error.stage == "infer"


def test_a_worker_waiting_for_requests_wakes_by_its_deadline():
    """Regression for a hung multi-stream run. A worker filling a batch waits for more
    requests until a deadline that is often microseconds away. ``queue.SimpleQueue`` (CPython
    3.11) turns such a wait into one without end when the deadline passes inside its get, so
    a worker holding a stream's last frame slept until a request that never came. Here the
    wait alternates with a request taken, which is when that happens (within ~50,000 tries)."""
    service = InferenceService(workers=1)
    service.close()  # no worker competes for the queue below
    carry: deque = deque()
    done = threading.Event()
    progress = [0]

    def wait_often() -> None:
        for i in range(150_000):
            progress[0] = i
            service._requests.put(i)
            assert service._next(carry, 0.0) == i
            assert service._next(carry, 1e-7) is None  # nothing came: back by the deadline
        done.set()

    threading.Thread(target=wait_often, daemon=True).start()
    assert done.wait(20), f"a 0.1 µs wait for a request never returned (try {progress[0]})"
