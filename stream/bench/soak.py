"""``detstream bench soak``: run the whole pipeline for a long time and watch the process.

A camera left running for days must not grow the process. The soak runs what ``detstream
run`` runs (the model, tracking, drawing, H.264 and JSON Lines outputs, and the truth scorer on
synthetic sources), samples resident memory, open file descriptors and threads every few
seconds, and reports the memory slope after warm-up (least squares, MB per hour) and the
peaks. File sources are looped, so any file lasts as long as the soak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from detstream.engines.errors import UserInputError
from detstream.stream.bench.common import Log, quiet
from detstream.stream.pipeline.runner import Pipeline
from detstream.stream.session import RunConfig, build

#: What the soak watches about the process, read from Linux's /proc.
_PROC = Path("/proc/self")


@dataclass(frozen=True)
class ProcessSample:
    """One look at the process: seconds since the start, resident MB, descriptors, threads,
    frames finished so far, and the C heap's bytes in use and free (MB, glibc; -1 elsewhere).

    Resident memory that grows while the heap in use stays flat is fragmentation (freed
    memory the allocator keeps), not a leak; ``rss_anon_mb`` leaves out the pages of mapped
    files (libraries whose code paths are touched for the first time late in a run).
    """

    seconds: float
    rss_mb: float
    fds: int
    threads: int
    frames: int
    heap_used_mb: float = -1.0
    heap_free_mb: float = -1.0
    rss_anon_mb: float = -1.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2():
    """glibc's ``mallinfo2`` (all arenas), or None where it does not exist."""
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).mallinfo2 if name else None
    except (OSError, AttributeError):
        return None
    if function is not None:
        function.restype = _MallInfo2
    return function


_HEAP_INFO = _mallinfo2()


def heap_usage() -> tuple[float, float]:
    """(MB in use, MB free inside the heap) from glibc, or (-1, -1) without it."""
    if _HEAP_INFO is None:
        return -1.0, -1.0
    info = _HEAP_INFO()
    return (info.uordblks + info.hblkhd) / 1e6, info.fordblks / 1e6


def sample_process(seconds: float = 0.0, frames: int = 0) -> ProcessSample:
    """Resident memory, open descriptors, OS threads and heap use of this process (Linux)."""
    if not _PROC.is_dir():
        raise UserInputError("bench soak reads /proc to watch the process; run it on Linux")
    resident_pages = int((_PROC / "statm").read_text().split()[1])
    threads, anon_kb = 0, -1000.0
    for line in (_PROC / "status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
        elif line.startswith("RssAnon:"):
            anon_kb = float(line.split()[1])
    used, free = heap_usage()
    return ProcessSample(seconds, resident_pages * os.sysconf("SC_PAGE_SIZE") / 1e6,
                         len(os.listdir(_PROC / "fd")), threads, frames, used, free,
                         anon_kb / 1000.0)


def memory_slope(samples: list[ProcessSample], warmup: float, key: str = "rss_mb") -> float:
    """Least-squares slope of ``key`` (resident memory) after ``warmup`` seconds, MB/hour."""
    kept = [s for s in samples if s.seconds >= warmup]
    if len(kept) < 2 or kept[-1].seconds - kept[0].seconds <= 0:
        return 0.0
    t = np.array([s.seconds for s in kept]) / 3600.0
    values = np.array([getattr(s, key) for s in kept])
    return float(np.polyfit(t, values, 1)[0])


def default_warmup(seconds: float) -> float:
    """A third of the run, at most 5 minutes: models, caches, encoders and the truth scorer's
    window fill up first."""
    return min(seconds / 3.0, 300.0)


#: What ``detstream bench soak`` prints, in order.
PRINTED = ("source", "minutes", "frames", "frames_dropped", "fps", "warmup_minutes",
           "rss_slope_mb_per_hour", "rss_anon_slope_mb_per_hour", "heap_used_slope_mb_per_hour",
           "heap_free_end_mb", "rss_start_mb", "rss_end_mb", "rss_peak_mb", "fds_peak",
           "threads_peak")
#: The columns of the ``samples`` rows in the figures.
SAMPLE_COLUMNS = ["seconds", "rss_mb", "fds", "threads", "frames", "heap_used_mb",
                  "heap_free_mb", "rss_anon_mb"]


def soak_config(config: RunConfig, out: Path) -> RunConfig:
    """``config`` as the soak runs it: video, JSON Lines and (with a tracker) MOT outputs in
    ``out``, no stats file or window, file sources looped for ever, no frame limit."""
    return replace(config, output=out / "video.mp4", save_json=out / "detections.jsonl",
                   save_mot=out / "tracks.txt" if config.tracker else None,
                   stats_json=None, show=False, loop=-1, max_frames=None)


def watch_process(pipeline: Pipeline, samples: list[ProcessSample], every: float,
                  stop: threading.Event, start: float, log: Log = quiet) -> threading.Thread:
    """Start a thread that appends a :class:`ProcessSample` to ``samples`` every ``every``
    seconds (the first at once) until ``stop`` is set, logging a line about once a minute.
    Sample times count from ``start`` (``time.perf_counter()``)."""

    def watch() -> None:
        while True:
            elapsed = time.perf_counter() - start
            sample = sample_process(elapsed, pipeline.metrics.frames_out)
            samples.append(sample)
            if len(samples) % max(1, round(60.0 / every)) == 0:
                log(f"soak {elapsed / 60:5.1f} min: {sample.frames} frames, RSS "
                    f"{sample.rss_mb:.1f} MB (heap {sample.heap_used_mb:.1f} used, "
                    f"{sample.heap_free_mb:.1f} free), {sample.fds} fds, "
                    f"{sample.threads} threads")
            if stop.wait(every):
                return

    watcher = threading.Thread(target=watch, name="soak-watch", daemon=True)
    watcher.start()
    return watcher


def run_watched(pipeline: Pipeline, seconds: float, every: float, log: Log = quiet
                ) -> tuple[dict, list[ProcessSample]]:
    """Run ``pipeline`` for ``seconds`` (or until its source ends or a stage fails) while
    :func:`watch_process` samples the process.

    Returns:
        The pipeline's report and the samples.

    Raises:
        StageError: a stage failed.
    """
    samples: list[ProcessSample] = []
    stop = threading.Event()
    start = time.perf_counter()
    pipeline.start()
    watcher = watch_process(pipeline, samples, every, stop, start, log)
    try:
        while time.perf_counter() - start < seconds:
            if pipeline.wait(min(1.0, every)):
                break  # the source ended or a stage failed
    finally:
        stop.set()
        watcher.join()
        pipeline.close()
    if pipeline.error is not None:
        raise pipeline.error
    return pipeline.report(), samples


def soak_figures(source: str, report: dict, samples: list[ProcessSample], warmup: float
                 ) -> dict:
    """The figures ``--json`` writes, from the run's report and the process samples."""
    elapsed = samples[-1].seconds if samples else 0.0
    return {
        "source": source,
        "minutes": round(elapsed / 60.0, 2),
        "frames": report["frames_out"],
        "frames_in": report["frames_in"],
        "frames_dropped": report["frames_dropped"],
        "fps": report["fps"],
        "warmup_minutes": round(warmup / 60.0, 2),
        "rss_slope_mb_per_hour": round(memory_slope(samples, warmup), 3),
        "rss_anon_slope_mb_per_hour": round(memory_slope(samples, warmup, "rss_anon_mb"), 3),
        "heap_used_slope_mb_per_hour": round(memory_slope(samples, warmup, "heap_used_mb"), 3),
        "heap_free_end_mb": round(samples[-1].heap_free_mb, 1),
        "rss_start_mb": round(next((s.rss_mb for s in samples if s.seconds >= warmup),
                                   samples[-1].rss_mb), 1),
        "rss_end_mb": round(samples[-1].rss_mb, 1),
        "rss_peak_mb": round(max(s.rss_mb for s in samples), 1),
        "fds_peak": max(s.fds for s in samples),
        "threads_peak": max(s.threads for s in samples),
        "latency_ms": report["latency_ms"],
        "samples_columns": list(SAMPLE_COLUMNS),
        "samples": [[round(s.seconds, 1), round(s.rss_mb, 2), s.fds, s.threads, s.frames,
                     round(s.heap_used_mb, 2), round(s.heap_free_mb, 2),
                     round(s.rss_anon_mb, 2)] for s in samples],
    }


def bench_soak(config: RunConfig, minutes: float, every: float = 5.0,
               warmup: float | None = None, keep: Path | None = None,
               log: Log = quiet) -> dict:
    """Run ``config`` (its outputs are replaced by files in a temporary folder, or ``keep``)
    for ``minutes`` and return the figures ``--json`` writes (:func:`soak_figures`).

    Raises:
        UserInputError: a bad duration or interval, or no /proc to read.
        StageError: a stage failed during the soak.
    """
    if not minutes > 0 or not every > 0:
        raise UserInputError("--minutes and --every must be positive numbers")
    seconds = minutes * 60.0
    warmup = default_warmup(seconds) if warmup is None else warmup
    sample_process()  # fails early off Linux
    with tempfile.TemporaryDirectory(prefix="detstream-soak-") as tmp:
        config = soak_config(config, Path(keep) if keep is not None else Path(tmp))
        session = build(config, log=log)
        report, samples = run_watched(session.pipeline, seconds, every, log)
    return soak_figures(config.source, report, samples, warmup)


def print_soak(result: dict) -> None:
    """The figures ``detstream bench soak`` prints (the samples go to ``--json`` only)."""
    for key in PRINTED:
        print(f"{key:<24}{result[key]}")
