"""Many sources in one process: one model and one inference service for all of them; one
pipeline (source, tracker, drawer, outputs) per stream.

Every stream is a :class:`~detstream.stream.session.Session` built with a shared model and a
shared :class:`~detstream.stream.pipeline.service.InferenceService`, which batches frames from
the streams into one engine call (up to ``batch`` frames, waiting at most ``collect_ms`` for
a batch to fill). Streams are independent otherwise: a source that dies, stalls or
reconnects affects only its own pipeline, and streams can be added and removed while the
others run. When every stream it starts with is live and adaptive (each frame output at the
camera's rate, the detector beside it), the service's workers run at lower priority
(:data:`~detstream.stream.pipeline.threads.STAGE_NICENESS`), as a single live pipeline's own
service does: the frames' path comes first.

Example:
    >>> group = MultiSession(RunConfig(model="default", output="out_{stream}.mp4"),
    ...                      ["a.mp4", "b.mp4"])
    >>> group.start(); group.wait(); report = group.close()
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from detstream.engines.errors import UserInputError
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.pipeline.service import InferenceService
from detstream.stream.pipeline.threads import STAGE_NICENESS
from detstream.stream.session import BackendCache, Log, RunConfig, Session, build, write_stats
from detstream.stream.sinks.tiled import TiledView

#: The placeholder output paths use for the stream number.
STREAM_FIELD = "{stream}"
_PER_STREAM_OUTPUTS = ("output", "save_json", "save_mot")


def stream_path(pattern: Path | None, stream: int, streams: int, option: str) -> Path | None:
    """``pattern`` for stream number ``stream``: ``{stream}`` becomes the number.

    Raises:
        UserInputError: several streams and no ``{stream}`` in the name (they would all write
            one file).
    """
    if pattern is None:
        return None
    text = str(pattern)
    if STREAM_FIELD not in text:
        if streams > 1:
            stem = Path(text)
            raise UserInputError(f"{option} {text} with {streams} sources: put {STREAM_FIELD} "
                                 f"in the name, e.g. {stem.with_name(stem.stem + '_{stream}')}"
                                 f"{stem.suffix}")
        return Path(text)
    return Path(text.replace(STREAM_FIELD, str(stream)))


def read_sources_file(path: str | Path) -> list[str]:
    """URIs from a file, one per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"--sources {path}: cannot read it ({exc}); give a text file "
                             "with one source URI per line") from None
    uris = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not uris:
        raise UserInputError(f"--sources {path} lists no source; write one URI per line")
    return uris


def default_workers(streams: int, on_cpu: bool) -> int:
    """Engine calls that may run at once for ``streams`` streams: one per core on the CPU
    (single-threaded calls), two on a GPU (one call uploads while the other runs)."""
    if not on_cpu:
        return 2
    return max(1, min(streams, os.cpu_count() or 1))


def _endless(uri: str, config: RunConfig) -> bool:
    """Whether a stream may run without end (its video is written fragmented)."""
    return config.loop < 0 or config.live is True or not (
        uri.startswith("synthetic://") or Path(uri).exists())


@dataclass
class Stream:
    """One stream of the group."""

    id: int
    uri: str
    session: Session
    started: bool = False
    closed: bool = False

    @property
    def pipeline(self):
        return self.session.pipeline


class MultiSession:
    """Run several sources through one model.

    Args:
        config: the settings every stream shares (model, thresholds, tracker, drawing...).
            Its ``output``, ``save_json`` and ``save_mot`` are patterns with ``{stream}``.
        sources: the URIs to start with.
        log: where models and sources report.
        batch: most frames per engine call (default: the number of streams, capped by the
            model's largest batch).
        collect_ms: longest wait for a batch to fill once it has a frame.
        workers: engine calls at once (default :func:`default_workers`).
        on_packet: called with every finished packet of every stream (``packet.stream_id``).
        tiled_output: a video file of every stream's frames in one grid.
        show: one window with the grid (instead of a window per stream).
        ids: the streams' numbers, one per source (default 0, 1, 2...).
    """

    def __init__(self, config: RunConfig, sources: Sequence[str], log: Log | None = None,
                 batch: int | None = None, collect_ms: float = 10.0,
                 workers: int | None = None,
                 on_packet: Callable[[FramePacket], None] | None = None,
                 tiled_output: Path | None = None, show: bool = False,
                 ids: Sequence[int] | None = None) -> None:
        if not sources:
            raise UserInputError("no source given; pass --source URI (repeat it for more "
                                 "streams) or --sources FILE")
        count = len(sources)
        if batch is not None and batch < 1:
            raise UserInputError(f"--batch {batch}: use 1 or more frames per engine call")
        # The model is opened once, for the largest batch (a dynamic batch axis up to it);
        # on the CPU each call gets its share of the cores (one thread each on a small one).
        cores = os.cpu_count() or 1
        threads = config.threads or max(1, cores // (workers or min(count, cores)))
        self.config = replace(config, max_batch=max(config.max_batch, batch or count),
                              threads=threads)
        self.log = log or (lambda message: None)
        self.on_packet = on_packet
        self.backends = BackendCache(size=1)
        backend = self.backends.open(self.config, self.log)
        self.describe = backend.describe()
        self.model_info = backend.info()
        self.batch = min(batch or count, max(1, backend.max_batch))
        self._workers = workers or default_workers(count, backend.device.type == "cpu")
        self._collect_ms = collect_ms
        self.service = self._new_service(niceness=0)
        self.streams: dict[int, Stream] = {}
        self._next_id = 0
        self._lock = threading.Lock()
        self._expected = count
        self.tiled: TiledView | None = None
        try:
            if tiled_output is not None or show:
                self.tiled = TiledView(count, tiled_output, show,
                                       fragmented=any(_endless(uri, config) for uri in sources),
                                       on_quit=lambda: self.drain("window closed with q/Esc"),
                                       preset=config.video_preset)
                self.config = replace(self.config, show=False)  # one window: the grid
            for i, uri in enumerate(sources):
                self.add(uri, start=False, stream=None if ids is None else ids[i])
            if self._camera_rate():  # known once the sources are open; nothing submitted yet
                self.service.close()
                self.service = self._new_service(niceness=STAGE_NICENESS)
                for entry in self.streams.values():
                    entry.pipeline.service = self.service
        except BaseException:
            self.close()
            raise

    def _new_service(self, niceness: int) -> InferenceService:
        """The shared inference service, its workers ``niceness`` below normal priority."""
        return InferenceService(workers=self._workers, max_batch=self.batch,
                                collect_ms=self._collect_ms, niceness=niceness)

    def _camera_rate(self) -> bool:
        """Whether every stream is live and adaptive, its stages favoured over inference (as
        a pipeline with its own service decides: :meth:`Pipeline.adaptive`)."""
        pipelines = [entry.pipeline for entry in self.streams.values()]
        return bool(pipelines) and all(p.adaptive() and p.options.favour_inference
                                       for p in pipelines)

    # ------------------------------------------------------------------ streams
    def _config_for(self, uri: str, stream: int) -> RunConfig:
        streams = max(self._expected, len(self.streams) + 1)
        paths = {name: stream_path(getattr(self.config, name), stream, streams,
                                   "--" + name.replace("_", "-"))
                 for name in _PER_STREAM_OUTPUTS}
        return replace(self.config, source=uri, stats_json=None, **paths)

    def add(self, uri: str, start: bool = True, stream: int | None = None) -> int:
        """Open ``uri`` as a new stream (started at once unless ``start`` is False); returns
        its number: ``stream`` when given (a number not in use; a fleet numbers its streams
        across workers), else the next free one."""
        with self._lock:
            if stream is None:
                stream = self._next_id
            elif stream in self.streams:
                raise ValueError(f"stream number {stream} is in use")
            self._next_id = max(self._next_id, stream) + 1
        extra = [self.tiled.sink(stream)] if self.tiled is not None else []
        session = build(self._config_for(uri, stream), self.log, on_packet=self.on_packet,
                        extra_sinks=extra, backends=self.backends, service=self.service,
                        stream_id=stream)
        if self.tiled is not None and stream == 0:
            self.tiled.fps = session.pipeline.source.fps or 30.0
        entry = Stream(stream, uri, session)
        with self._lock:
            self.streams[stream] = entry
        if start:
            self._start(entry)
        return stream

    def remove(self, stream: int) -> dict:
        """Stop stream ``stream``, finalise its outputs and return its report."""
        entry = self.streams.get(stream)
        if entry is None:
            raise KeyError(f"no stream {stream}")
        self._close(entry)
        return self._stream_report(entry)

    def _start(self, entry: Stream) -> None:
        if not entry.started:
            entry.pipeline.start()
            entry.started = True

    def _close(self, entry: Stream) -> None:
        if not entry.closed:
            entry.closed = True
            entry.pipeline.close()

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Start every stream not yet started."""
        for entry in list(self.streams.values()):
            self._start(entry)

    def running(self) -> list[Stream]:
        return [e for e in self.streams.values()
                if e.started and not e.closed and not e.pipeline.wait(0)]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every stream has finished; True when they have."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            pending = self.running()
            if not pending:
                return True
            left = None if deadline is None else deadline - time.perf_counter()
            if left is not None and left <= 0:
                return False
            pending[0].pipeline.wait(0.1 if left is None else min(0.1, left))

    def drain(self, reason: str = "interrupted") -> None:
        """Every stream takes no new frame and finishes the frames in flight."""
        for entry in list(self.streams.values()):
            entry.pipeline.drain(reason)

    def errors(self) -> dict[int, BaseException]:
        return {e.id: e.pipeline.error for e in self.streams.values()
                if e.pipeline.error is not None}

    def close(self) -> dict:
        """Stop every stream, finalise every output, stop the service; returns the report,
        written to the config's ``stats_json`` when it names one."""
        for entry in list(self.streams.values()):
            self._close(entry)
        self.service.close()
        if self.tiled is not None:
            self.tiled.close()
        report = self.report()
        if self.config.stats_json is not None:
            write_stats(self.config.stats_json, report)
        return report

    # ------------------------------------------------------------------ reporting
    def _stream_report(self, entry: Stream) -> dict:
        report = entry.pipeline.report()
        return {"stream": entry.id, "uri": entry.uri, "frames_in": report["frames_in"],
                "frames_out": report["frames_out"], "frames_dropped": report["frames_dropped"],
                "frames_skipped": report["frames_skipped"], "fps": report["fps"],
                "latency_ms": report["latency_ms"], "source": report["source"],
                "error": str(entry.pipeline.error) if entry.pipeline.error else None,
                "scores": entry.session.scores() if entry.closed else None}

    def report(self) -> dict:
        """Totals over every stream, plus ``streams``: one entry per stream."""
        streams = [self._stream_report(e) for e in self.streams.values()]
        pipelines = [e.pipeline for e in self.streams.values() if e.started]
        started = min((p.metrics.started for p in pipelines), default=0.0)
        ended = max((p.metrics.ended for p in pipelines), default=0.0)
        seconds = max(ended - started, 1e-9)
        frames_out = sum(s["frames_out"] for s in streams)
        return {"frames_in": sum(s["frames_in"] for s in streams), "frames_out": frames_out,
                "frames_dropped": sum(s["frames_dropped"] for s in streams),
                "fps": round(frames_out / seconds, 2), "seconds": round(seconds, 3),
                "inference": self.service.stats.report() | {"batch": self.batch,
                                                             "workers": self.service.workers},
                "model": self.model_info, "streams": streams}
