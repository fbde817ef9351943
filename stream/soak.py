"""``detstream bench soak``: run the whole pipeline for a long time and watch the process.

A camera left running for days must not grow the process. The soak runs what ``detstream
run`` runs (the model, tracking, drawing, H.264 and JSON Lines outputs, and the truth scorer on
synthetic sources), samples resident memory, open file descriptors and threads every few
seconds, and reports the memory slope after warm-up (least squares, MB per hour) and the
peaks. File sources are looped, so any file lasts as long as the soak.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engines.errors import UserInputError
from stream.session import RunConfig, build

Log = Callable[[str], None]

#: What the soak watches about the process, read from Linux's /proc.
_PROC = Path("/proc/self")


@dataclass(frozen=True)
class ProcessSample:
    """One look at the process: seconds since the start, resident MB, descriptors, threads,
    frames finished so far."""

    seconds: float
    rss_mb: float
    fds: int
    threads: int
    frames: int


def sample_process(seconds: float = 0.0, frames: int = 0) -> ProcessSample:
    """Resident memory, open descriptors and OS threads of this process (Linux)."""
    if not _PROC.is_dir():
        raise UserInputError("bench soak reads /proc to watch the process; run it on Linux")
    resident_pages = int((_PROC / "statm").read_text().split()[1])
    threads = 0
    for line in (_PROC / "status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
            break
    return ProcessSample(seconds, resident_pages * os.sysconf("SC_PAGE_SIZE") / 1e6,
                         len(os.listdir(_PROC / "fd")), threads, frames)


def memory_slope(samples: list[ProcessSample], warmup: float) -> float:
    """Least-squares slope of resident memory after ``warmup`` seconds, in MB per hour."""
    kept = [s for s in samples if s.seconds >= warmup]
    if len(kept) < 2 or kept[-1].seconds - kept[0].seconds <= 0:
        return 0.0
    t = np.array([s.seconds for s in kept]) / 3600.0
    rss = np.array([s.rss_mb for s in kept])
    return float(np.polyfit(t, rss, 1)[0])


def default_warmup(seconds: float) -> float:
    """A third of the run, at most 5 minutes: models, caches, encoders and the truth scorer's
    window fill up first."""
    return min(seconds / 3.0, 300.0)


def bench_soak(config: RunConfig, minutes: float, every: float = 5.0,
               warmup: float | None = None, keep: Path | None = None,
               log: Log | None = None) -> dict:
    """Run ``config`` (its outputs are replaced by files in a temporary folder, or ``keep``)
    for ``minutes`` and return the figures ``--json`` writes.

    Raises:
        UserInputError: a bad duration or interval, or no /proc to read.
        StageError: a stage failed during the soak.
    """
    log = log or (lambda message: None)
    if not minutes > 0 or not every > 0:
        raise UserInputError("--minutes and --every must be positive numbers")
    seconds = minutes * 60.0
    warmup = default_warmup(seconds) if warmup is None else warmup
    sample_process()  # fails early off Linux
    with tempfile.TemporaryDirectory(prefix="detstream-soak-") as tmp:
        out = Path(keep) if keep is not None else Path(tmp)
        config = replace(config, output=out / "video.mp4", save_json=out / "detections.jsonl",
                         save_mot=out / "tracks.txt" if config.tracker else None,
                         stats_json=None, show=False, loop=-1, max_frames=None)
        session = build(config, log=log)
        pipeline = session.pipeline
        samples: list[ProcessSample] = []
        start = time.perf_counter()
        done = threading.Event()

        def watch() -> None:
            while True:
                elapsed = time.perf_counter() - start
                sample = sample_process(elapsed, pipeline.metrics.frames_out)
                samples.append(sample)
                if len(samples) % max(1, round(60.0 / every)) == 0:
                    log(f"soak {elapsed / 60:5.1f} min: {sample.frames} frames, RSS "
                        f"{sample.rss_mb:.1f} MB, {sample.fds} fds, {sample.threads} threads")
                if done.wait(every):
                    return

        pipeline.start()
        watcher = threading.Thread(target=watch, name="soak-watch", daemon=True)
        watcher.start()
        try:
            while time.perf_counter() - start < seconds:
                if pipeline.wait(min(1.0, every)):
                    break  # the source ended or a stage failed
        finally:
            done.set()
            watcher.join()
            pipeline.close()
        if pipeline.error is not None:
            raise pipeline.error
        report = pipeline.report()
    elapsed = samples[-1].seconds if samples else 0.0
    return {
        "source": config.source,
        "minutes": round(elapsed / 60.0, 2),
        "frames": report["frames_out"],
        "frames_in": report["frames_in"],
        "frames_dropped": report["frames_dropped"],
        "fps": report["fps"],
        "warmup_minutes": round(warmup / 60.0, 2),
        "rss_slope_mb_per_hour": round(memory_slope(samples, warmup), 3),
        "rss_start_mb": round(next((s.rss_mb for s in samples if s.seconds >= warmup),
                                   samples[-1].rss_mb), 1),
        "rss_end_mb": round(samples[-1].rss_mb, 1),
        "rss_peak_mb": round(max(s.rss_mb for s in samples), 1),
        "fds_peak": max(s.fds for s in samples),
        "threads_peak": max(s.threads for s in samples),
        "latency_ms": report["latency_ms"],
        "samples": [[round(s.seconds, 1), round(s.rss_mb, 2), s.fds, s.threads, s.frames]
                    for s in samples],
    }
