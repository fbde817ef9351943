"""The inference service: one component owns inference and its threads; streams submit
preprocessed frames and get raw model outputs back.

One service serves three cases:

- **one file source**: several frames in flight on a pool of workers. On a CPU several
  single-threaded calls at once cost less per frame than one call spread over every core
  (threads wait for each other inside every layer); onnxruntime and torch run concurrent
  calls on one loaded model. The pipeline waits for results in frame order, so no frame is
  dropped or reordered.
- **one live source**: one frame in flight and every inference thread on it (lowest latency).
- **many sources**: a worker takes the first waiting frame, then collects frames from the
  other streams until the batch is full or ``collect_ms`` has passed, runs them as one batch
  and splits the output back per request. A stream that stalls leaves the batch short after
  at most ``collect_ms``; in steady state the batch is capped at the number of streams that
  submitted recently, so nobody waits for a stream that has gone quiet.

Requests carry their backend, so streams (or a model swapped while running) that use
different models are never batched together.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from detstream.engines.runtime.base import Backend
from detstream.stream.pipeline.threads import yield_to_inference

_POLL = 0.05  # seconds between checks of the closed flag while idle
#: A stream counts as active for batching while it has submitted within this many seconds.
ACTIVE_WINDOW = 1.0


@dataclass
class InferenceResult:
    """What a request gets back.

    Attributes:
        raw: the model's raw output for this request's frames (on the backend's device).
        infer_ms: wall time of the engine call that ran it (shared by its whole batch).
        wait_ms: time from submission until a worker started on it.
        batch_size: frames in that engine call (this request's and others').
    """

    raw: torch.Tensor
    infer_ms: float
    wait_ms: float
    batch_size: int


@dataclass
class _Request:
    backend: Backend
    batch: torch.Tensor
    stream: int
    submitted: float
    future: Future = field(default_factory=Future)


@dataclass
class ServiceStats:
    """Counters since the service started (read by benchmarks and reports)."""

    calls: int = 0
    frames: int = 0
    busy_s: float = 0.0
    largest_batch: int = 0

    def report(self) -> dict:
        mean = self.frames / self.calls if self.calls else 0.0
        return {"engine_calls": self.calls, "frames": self.frames,
                "mean_batch": round(mean, 2), "largest_batch": self.largest_batch,
                "busy_seconds": round(self.busy_s, 3)}


class InferenceService:
    """Run inference for one or many streams on a pool of worker threads.

    Args:
        workers: engine calls that may run at once (threads). For a backend that runs one
            call at a time (TensorRT serialises its own) extra workers only queue.
        max_batch: frames one engine call may hold (capped by each backend's ``max_batch``).
        collect_ms: how long a worker waits for more frames to fill a batch once it has one.
        on_error: called with any exception an engine call raised (the request's future
            raises it too).
        niceness: lower the workers' CPU priority by this much (live streams output at the
            camera's rate: their frames' path comes before inference).

    Example:
        >>> service = InferenceService(workers=2)
        >>> result = service.submit(backend, batch).result()   # InferenceResult
        >>> service.close()
    """

    def __init__(self, workers: int = 1, max_batch: int = 1, collect_ms: float = 5.0,
                 on_error: Callable[[BaseException], None] | None = None,
                 niceness: int = 0) -> None:
        if workers < 1:
            raise ValueError("an inference service needs at least one worker")
        self.workers = workers
        self.max_batch = max(1, max_batch)
        self.collect_s = max(0.0, collect_ms) / 1000.0
        self.on_error = on_error
        self.niceness = niceness
        self.stats = ServiceStats()
        # queue.Queue, not SimpleQueue: SimpleQueue.get(timeout=t) in CPython 3.11 waits
        # without end when the deadline passes inside the call (after it took the lock on an
        # empty queue), and a worker filling a batch waits with deadlines microseconds away.
        self._requests: queue.Queue[_Request] = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._last_seen: dict[int, float] = {}  # stream -> last submission (perf_counter)
        # Threads are started here, by the caller: a worker started from a stage thread
        # would inherit that thread's lowered priority.
        self._threads = [threading.Thread(target=self._work, name=f"infer-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ submitting
    def submit(self, backend: Backend, batch: torch.Tensor, stream: int = 0
               ) -> Future[InferenceResult]:
        """Queue ``batch`` ([B, 3, H, W], preprocessed for ``backend``); the future resolves to
        an :class:`InferenceResult` (or raises what the engine call raised)."""
        if self._closed.is_set():
            raise RuntimeError("the inference service is closed")
        now = time.perf_counter()
        request = _Request(backend, batch, stream, now)
        with self._lock:
            self._last_seen[stream] = now
        self._requests.put(request)
        return request.future

    def active_streams(self, now: float | None = None) -> int:
        """Streams that submitted within :data:`ACTIVE_WINDOW` seconds."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            return sum(1 for seen in self._last_seen.values() if now - seen <= ACTIVE_WINDOW)

    def forget(self, stream: int) -> None:
        """A stream has ended: batches stop counting on it."""
        with self._lock:
            self._last_seen.pop(stream, None)

    # ------------------------------------------------------------------ working
    def _next(self, carry: deque[_Request], timeout: float) -> _Request | None:
        if carry:
            return carry.popleft()
        try:
            return self._requests.get(timeout=timeout)
        except queue.Empty:
            return None

    def _collect(self, first: _Request, carry: deque[_Request]) -> list[_Request]:
        """``first`` plus frames for the same backend and input shape, until the batch is full
        or the collection time has passed."""
        limit = min(self.max_batch, max(1, first.backend.max_batch))
        if limit > 1:
            limit = min(limit, max(1, self.active_streams()))
        group, frames = [first], first.batch.shape[0]
        deadline = first.submitted + self.collect_s
        skipped: list[_Request] = []
        while frames < limit:
            wait = deadline - time.perf_counter()
            request = self._next(carry, 0.0) if wait <= 0 else self._next(carry, wait)
            if request is None:
                break
            fits = (request.backend is first.backend
                    and request.batch.shape[1:] == first.batch.shape[1:]
                    and frames + request.batch.shape[0] <= limit)
            if fits:
                group.append(request)
                frames += request.batch.shape[0]
            else:
                skipped.append(request)  # another model, or too big: the next batch's
        carry.extend(skipped)
        return group

    def _work(self) -> None:
        if self.niceness > 0:  # the frames' own path comes first (live, camera rate)
            yield_to_inference(self.niceness)
        carry: deque[_Request] = deque()  # requests collected but left for the next batch
        while True:
            first = self._next(carry, _POLL)
            if first is None:
                if self._closed.is_set():
                    return
                continue
            group = self._collect(first, carry) if self.max_batch > 1 else [first]
            self._run(group)

    def _run(self, group: list[_Request]) -> None:
        start = time.perf_counter()
        try:
            batch = (group[0].batch if len(group) == 1
                     else torch.cat([request.batch for request in group]))
            raw = group[0].backend.infer(batch)
        except BaseException as exc:  # every waiting stream hears of it
            for request in group:
                request.future.set_exception(exc)
            if self.on_error is not None:
                self.on_error(exc)
            return
        end = time.perf_counter()
        infer_ms = (end - start) * 1000.0
        size = int(batch.shape[0])
        with self._lock:
            self.stats.calls += 1
            self.stats.frames += size
            self.stats.busy_s += end - start
            self.stats.largest_batch = max(self.stats.largest_batch, size)
        offset = 0
        for request in group:
            count = int(request.batch.shape[0])
            part = raw if len(group) == 1 else raw[offset:offset + count]
            offset += count
            request.future.set_result(InferenceResult(
                part, infer_ms, (start - request.submitted) * 1000.0, size))

    # ------------------------------------------------------------------ closing
    def close(self, timeout: float = 10.0) -> None:
        """Finish the requests already queued, then stop the workers."""
        self._closed.set()
        deadline = time.perf_counter() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.perf_counter()))
        while True:  # anything left (a worker that did not stop in time) fails clearly
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                break
            request.future.set_exception(RuntimeError("the inference service closed"))

    def __enter__(self) -> InferenceService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
