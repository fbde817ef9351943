"""One worker of the fleet: an inference service for a group of streams, run as a Ray actor.

:class:`FleetWorker` is a plain class; the controller makes it an actor with
``ray.remote(FleetWorker).options(num_cpus=..., num_gpus=...)``, so this module imports
without Ray. Inside, the streams run through :class:`WorkerGroup`, the multi-stream session
(one model, one batching service, a pipeline with its own tracker and outputs per stream).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from detstream.engines.predict import Predictor
from detstream.stream.multisession import MultiSession
from detstream.stream.session import MODEL_FIELDS, BackendCache, RunConfig

#: Frame the capacity measurement runs on (pixels, BGR).
MEASURE_SIZE = (640, 360)


class WorkerGroup(MultiSession):
    """A :class:`MultiSession` whose streams each keep their own settings (source, tracker,
    thresholds, outputs) while sharing the model of ``shared``.

    Args:
        shared: the model settings every stream uses (its ``MODEL_FIELDS``).
        configs: one complete :class:`RunConfig` per stream, in stream order.
        **options: as for :class:`MultiSession` (``batch``, ``collect_ms``, ``workers``...).
    """

    def __init__(self, shared: RunConfig, configs: Sequence[RunConfig], **options) -> None:
        self._configs = list(configs)
        super().__init__(shared, [c.source for c in self._configs], **options)

    def _config_for(self, uri: str, stream: int) -> RunConfig:
        own = self._configs[stream]
        return replace(own, stats_json=None,
                       **{name: getattr(self.config, name) for name in MODEL_FIELDS})


def _log(name: str):
    def log(message: str) -> None:
        print(f"[{name}] {message}", file=sys.stderr, flush=True)
    return log


class FleetWorker:
    """A group of streams on one model, driven by the controller.

    Args:
        name: the worker's name (log lines and reports).
        threads: CPU threads its engine calls use (the CPUs Ray gave it).
    """

    def __init__(self, name: str, threads: int = 1) -> None:
        self.name = name
        self.threads = max(1, int(threads))
        self.group: WorkerGroup | None = None
        self.log = _log(name)

    def ready(self) -> str:
        """Answers once the actor runs (the controller waits on it)."""
        return self.name

    def measure(self, config: RunConfig, frames: int = 8) -> float:
        """Frames/s this worker detects with ``config``'s model, one frame per call on a
        :data:`MEASURE_SIZE` frame, after one warm-up call."""
        backend = BackendCache(size=1).open(replace(config, threads=self.threads), self.log)
        predictor = Predictor(backend, conf=config.conf, iou=config.iou)
        width, height = MEASURE_SIZE
        image = np.full((height, width, 3), 114, dtype=np.uint8)
        predictor([image])
        began = time.perf_counter()
        for _ in range(frames):
            predictor([image])
        return frames / max(time.perf_counter() - began, 1e-9)

    def start(self, shared: RunConfig, configs: list[RunConfig],
              collect_ms: float = 10.0) -> int:
        """Open every stream of ``configs`` on ``shared``'s model and start them; returns the
        number of streams."""
        if self.group is not None:
            raise RuntimeError(f"worker {self.name} already runs a group")
        shared = replace(shared, threads=shared.threads or self.threads)
        self.group = WorkerGroup(shared, configs, log=self.log, collect_ms=collect_ms)
        self.group.start()
        return len(self.group.streams)

    def poll(self) -> dict:
        """``done`` (every stream has ended) and the statistics so far (as
        :meth:`MultiSession.report`)."""
        if self.group is None:
            return {"done": True, "report": None}
        return {"done": not self.group.running(), "report": self.group.report()}

    def drain(self, reason: str = "interrupted") -> None:
        """Every stream takes no new frame and finishes the ones in flight."""
        if self.group is not None:
            self.group.drain(reason)

    def stop(self) -> dict | None:
        """Finalise every output, stop the service; returns the final statistics."""
        if self.group is None:
            return None
        return self.group.close()
