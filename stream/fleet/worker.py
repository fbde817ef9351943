"""One worker of the fleet: an inference service for a group of streams, run as a Ray actor.

:class:`FleetWorker` is a plain class; the controller makes it an actor with
``ray.remote(FleetWorker).options(num_cpus=..., num_gpus=...)``, so this module imports
without Ray. Inside, the streams run through :class:`WorkerGroup`, the multi-stream session
(one model, one batching service, a pipeline with its own tracker and outputs per stream).
Streams come and go one at a time: the controller adds a stream where it has room, takes
finished ones off, and moves streams here from a worker that died.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from detstream.engines.predict import Predictor
from detstream.stream.multisession import MultiSession
from detstream.stream.session import MODEL_FIELDS, BackendCache, RunConfig

#: Frame the capacity measurement runs on (pixels, BGR).
MEASURE_SIZE = (640, 360)
#: Largest engine call of a worker: streams placed on it later batch up to this many frames.
MAX_BATCH = 8


class WorkerGroup(MultiSession):
    """A :class:`MultiSession` whose streams each keep their own settings (source, tracker,
    thresholds, outputs) and number (the fleet's) while sharing the model of ``shared``.

    Args:
        shared: the model settings every stream uses (its ``MODEL_FIELDS``).
        configs: stream number → its complete :class:`RunConfig`.
        **options: as for :class:`MultiSession` (``batch``, ``collect_ms``, ``workers``...).
    """

    def __init__(self, shared: RunConfig, configs: Mapping[int, RunConfig], **options) -> None:
        self._configs = dict(configs)
        super().__init__(shared, [c.source for c in self._configs.values()],
                         ids=list(self._configs), **options)

    def _config_for(self, uri: str, stream: int) -> RunConfig:
        own = self._configs[stream]
        return replace(own, stats_json=None,
                       **{name: getattr(self.config, name) for name in MODEL_FIELDS})

    def add_stream(self, config: RunConfig, stream: int) -> None:
        """Open and start ``config`` as stream number ``stream``."""
        self._configs[stream] = config
        try:
            self.add(config.source, stream=stream)
        except BaseException:
            del self._configs[stream]
            raise

    def finish(self, stream: int) -> dict:
        """Close stream ``stream`` (finalising its outputs), forget it, return its report."""
        report = self.remove(stream)
        self.streams.pop(stream, None)
        self._configs.pop(stream, None)
        return report


def _log(name: str):
    def log(message: str) -> None:
        print(f"[{name}] {message}", file=sys.stderr, flush=True)
    return log


def _full_priority() -> int:
    """Undo the niceness Ray gives its worker processes (15 by default): the workers are
    the fleet's work, and anything else on the machine would otherwise delay every frame.
    Threads started later by this one inherit it. Returns the niceness it runs at (kept
    where the system refuses: an unprivileged user may not raise a priority)."""
    if not hasattr(os, "setpriority"):
        return 0
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 0)
    except OSError:
        pass
    return os.getpriority(os.PRIO_PROCESS, tid)


def model_key(config: RunConfig) -> tuple:
    """What must match for two streams to share a worker's loaded model (as the fleet's
    ``StreamSpec.model_key``; the group adjusts threads and batch itself)."""
    return (config.model, config.imgsz, config.backend)


class FleetWorker:
    """A group of streams on one model, driven by the controller.

    Args:
        name: the worker's name (log lines and reports).
        threads: the CPUs Ray gave it. Without a GPU it runs that many single-threaded
            engine calls at once, as ``detstream run`` does with several streams on a
            machine of that many cores.
        collect_ms: longest wait for a batch to fill once it has a frame.
        gpus: the GPUs Ray gave it (engine calls then run as ``detstream run`` runs them
            on a GPU).
    """

    def __init__(self, name: str, threads: int = 1, collect_ms: float = 10.0,
                 gpus: float = 0.0) -> None:
        self.name = name
        self.threads = max(1, int(threads))
        self.gpus = gpus
        self.collect_ms = collect_ms
        self.group: WorkerGroup | None = None
        self.log = _log(name)
        self.niceness = _full_priority()
        # engine counters of the groups that closed (a worker frees its model when its last
        # stream ends, and may load another later)
        self._past = {"engine_calls": 0, "frames": 0, "busy_seconds": 0.0, "largest_batch": 0}

    def ready(self) -> dict:
        """Answers once the actor runs: its name, process id, host and niceness."""
        return {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
                "niceness": self.niceness}

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

    def add(self, config: RunConfig, stream: int) -> dict:
        """Open ``config`` as stream number ``stream`` and start it; the first stream decides
        the worker's model (until its last stream ends). Returns where the stream started
        (``start_frame``: above 0 when it resumed an earlier run's outputs)."""
        # Ray's share of the machine, not os.cpu_count(), decides the engine threads
        cpu = self.gpus <= 0
        config = replace(config, threads=config.threads or (1 if cpu else self.threads))
        if self.group is None:
            self.group = WorkerGroup(config, {stream: config}, log=self.log,
                                     batch=MAX_BATCH, collect_ms=self.collect_ms,
                                     workers=self.threads if cpu else None)
            self.group.start()
        else:
            if model_key(config) != model_key(self.group.config):
                raise RuntimeError(f"worker {self.name} serves {self.group.config.model} "
                                   f"and was given a stream of {config.model}")
            self.group.add_stream(config, stream)
        session = self.group.streams[stream].session
        resumed = session.resumed is not None and not session.pipeline.source.live
        return {"start_frame": session.resumed.next_frame if resumed else 0}

    def poll(self) -> dict:
        """Per stream number: ``done`` (it has ended) and its statistics so far (the keys of
        ``detstream run --stats-json``); the inference service's counters; and the model
        and device it runs (``None`` while it has no stream)."""
        if self.group is None:
            return {"streams": {}, "inference": self._inference(), "device": None}
        running = {e.id for e in self.group.running()}
        streams = {entry.id: {"done": entry.id not in running,
                              "report": self.group._stream_report(entry)}
                   for entry in list(self.group.streams.values())}
        return {"streams": streams, "inference": self._inference(),
                "device": self.group.describe}

    def _inference(self) -> dict:
        """Engine calls, frames, busy time and largest batch since the worker started."""
        now = self.group.service.stats.report() if self.group is not None else {}
        total = {key: value + now.get(key, 0) for key, value in self._past.items()
                 if key != "largest_batch"}
        total["largest_batch"] = max(self._past["largest_batch"], now.get("largest_batch", 0))
        total["busy_seconds"] = round(total["busy_seconds"], 3)
        total["mean_batch"] = round(total["frames"] / total["engine_calls"], 2) \
            if total["engine_calls"] else 0.0
        return total

    def _retire(self) -> None:
        """Close the group (its model and service), keeping its engine counters."""
        if self.group is None:
            return
        self.group.close()
        now = self.group.service.stats.report()
        for key in ("engine_calls", "frames", "busy_seconds"):
            self._past[key] += now[key]
        self._past["largest_batch"] = max(self._past["largest_batch"], now["largest_batch"])
        self.group = None

    def finish(self, stream: int) -> dict:
        """Finalise stream ``stream``'s outputs and return its statistics. The last stream
        to go frees the model (the worker may then take another)."""
        if self.group is None or stream not in self.group.streams:
            raise KeyError(f"worker {self.name} runs no stream {stream}")
        report = self.group.finish(stream)
        if not self.group.streams:
            self._retire()
        return report

    def drain(self, reason: str = "interrupted") -> None:
        """Every stream takes no new frame and finishes the ones in flight."""
        if self.group is not None:
            self.group.drain(reason)

    def stop(self) -> dict[int, dict]:
        """Finalise every stream's outputs; returns their statistics by stream number."""
        if self.group is None:
            return {}
        reports = {s: self.group.finish(s) for s in list(self.group.streams)}
        self._retire()
        return reports
