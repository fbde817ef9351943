"""Thread settings for processes that run the pipeline: OpenMP's wait policy, how many threads
inference gets, and which stage threads yield the CPU to inference.

The pipeline already keeps every core busy with its own stage threads. torch's OpenMP pool
is then a liability: by default each OpenMP worker spins for a while after every parallel
region, waiting for the next one. The post-processing stage calls torch every frame, so its
workers spin through most of the frame, on cores that decode, inference and encoding need.
Measured on the 2-core EPYC (default model, 768x432 video, 600 frames): one spinning OpenMP
worker burnt 6.6 ms of CPU per frame, and the tracking stage's own thread 5.2 ms instead of
3.3 ms. ``OMP_WAIT_POLICY=PASSIVE`` puts the workers to sleep at once instead.

OpenMP reads the variable when torch loads it, so it must be set before ``import torch``.
The ``detstream`` commands that run the pipeline do that; Python programs that embed the
pipeline should set it in their environment (or call :func:`prefer_passive_openmp` first).
Training keeps the default: one thread running torch back to back gains from spinning.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

_VARIABLE = "OMP_WAIT_POLICY"

# How much nicer (lower CPU priority, Linux per thread) the stages around inference run.
# Inference is the slowest stage, so every moment it waits for a core is lost throughput,
# while the other stages have slack and catch up whenever it blocks on its queue. At nice
# +10 the scheduler gives a competing inference thread about 9x their share. Measured on the
# 2-core EPYC (default model, 768x432 video, 300 frames, two runs each, one inference thread):
# nice 0: 81 FPS, +5: 85-89, +10: 91-94 FPS, with p95 latency 112 -> 101 ms.
STAGE_NICENESS = 10


def prefer_passive_openmp() -> bool:
    """Ask OpenMP to sleep rather than spin between parallel regions, unless the user chose.

    Returns:
        True when OpenMP will run passive in this process: the variable is (now) PASSIVE and
        torch was not loaded before it was set.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault(_VARIABLE, "PASSIVE")
        return os.environ[_VARIABLE].upper() == "PASSIVE"
    return False


def single_threaded_opencv() -> None:
    """Run OpenCV's functions on the calling thread only, in a process that runs pipelines.

    The stage threads already run side by side; OpenCV's own pool splitting a resize or a
    colour conversion across the same cores only adds hand-offs and waiting workers. Measured
    with ``bench pipeline --replay-ms 1`` at 1280x720 on the 2-core EPYC: 106.0 FPS with
    OpenCV's default two threads, 111.5 FPS with one; post-processing and tracking 3.44 ->
    2.48 ms of CPU a frame, preprocessing 1.65 -> 1.25. Like Ultralytics' own
    ``cv2.setNumThreads(0)``, this is process-wide.
    """
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


def inference_threads(cores: int | None = None) -> int:
    """CPU threads for inference inside a pipeline: every core but one, and at least one.

    The remaining core decodes, tracks, draws and encodes meanwhile. On the 2-core EPYC one
    onnxruntime thread took 10.4 ms of CPU per frame of the default model where two took
    13.5 ms (for 7.9 ms of wall time): the pipeline has better use for those 3 ms.
    """
    return max(1, (cores or os.cpu_count() or 1) - 1)


@dataclass(frozen=True)
class InferencePlan:
    """How one stream's inference uses the CPU: ``threads`` per engine call, ``workers``
    engine calls at once (frames in flight)."""

    threads: int
    workers: int


def inference_plan(live: bool, threads: int | None = None, cores: int | None = None,
                   gpu: bool = False, camera_rate: bool = False) -> InferencePlan:
    """Threads per call and calls at once for one stream.

    Live sources want the lowest latency: one frame in flight with every core but one on it
    (:func:`inference_threads`). Files want throughput: several single-threaded calls at once
    cost less CPU per frame than one call spread over the cores, whose threads wait for each
    other inside every layer; at most four calls, each with its share of the cores. A
    ``threads`` the user chose is kept, and the calls at once fill the cores with it. On a
    ``gpu`` a file gets two calls (one computes while the other's frames upload).

    ``camera_rate``: a live source on the adaptive schedule, whose frames' own path runs at
    normal priority and inference at nice +10: inference takes every core and gets what the
    frames leave. On the 2-core EPYC, a 640x480 camera at 30 fps: two threads detected
    390-405 of 450 frames (HOTA 0.664-0.670 against the truth, latency p95 59-61 ms), one
    thread 260-273 (HOTA 0.621-0.647, p95 68-72 ms), every frame output either way.
    """
    cores = cores or os.cpu_count() or 1
    if gpu:
        return InferencePlan(threads or inference_threads(cores), 1 if live else 2)
    if live:
        return InferencePlan(threads or (cores if camera_rate else inference_threads(cores)), 1)
    if threads:
        return InferencePlan(threads, max(1, cores // threads))
    workers = min(cores, 4)
    return InferencePlan(max(1, cores // workers), workers)


def inference_fills_cores(device: str, threads: int | None, workers: int,
                          cores: int | None = None) -> bool:
    """Whether inference on ``device`` (``cpu``, ``cuda``), ``workers`` calls at once of
    ``threads`` each (``None``: every core; 0: none, a replayed model's wait), takes every
    core: a file's plan on the CPU.

    Then inference is not the one slow stage the others wait on: every stage shares the
    cores, and the stages made to yield to inference (:data:`STAGE_NICENESS`) only stall the
    frames behind them. bikes.mp4 with the INT8 default model on the 2-core EPYC (two
    single-threaded calls at once, 250 frames, two runs each): stages yielding 55.1-57.8 FPS
    at 175-179% CPU, not yielding 58.9-62.0 FPS at 190-192%.
    """
    if device != "cpu":
        return False
    cores = cores or os.cpu_count() or 1
    return workers * (cores if threads is None else threads) >= cores


#: Camera rate: one inference thread is enough when a single-threaded call takes at most this
#: share of the frame interval, measured with the machine otherwise idle (in the pipeline the
#: frames' own path takes some of the core too).
ONE_THREAD_SHARE = 0.75


def one_thread_fits(call_ms: float, fps: float | None) -> bool:
    """Camera rate on the CPU: whether one inference thread, taking ``call_ms`` a call, keeps
    up with a camera of ``fps`` (unknown: 30).

    Every core on inference detects most frames when a call is slow (the default model in
    FP32, 40 ms with one thread on the 2-core EPYC); when one thread already fits the frame
    interval, a second only takes the core the frames' own path needs. The INT8 default
    model (19 ms with one thread) at 1280x720, 120 s: one thread detected 28.96 frames a
    second with latency p50 / p95 52 / 68 ms, two threads 26.13 with 61 / 80 ms.
    """
    interval_ms = 1000.0 / (fps if fps and fps > 0 else 30.0)
    return call_ms <= ONE_THREAD_SHARE * interval_ms


def yield_to_inference(niceness: int = STAGE_NICENESS) -> bool:
    """Lower the calling thread's CPU priority by ``niceness`` (Linux: per thread; threads it
    starts later, such as an encoder's, inherit it). True when it took effect."""
    if niceness <= 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except OSError:
        return False
    return True
