"""Run metrics, read from the packets: per-stage time, end-to-end latency, frames, queues.

Everything here is bounded, whatever the length of the run: a camera left running for days
must not grow the process. Means and maxima are running sums; percentiles come from a
DDSketch (a log-bucketed histogram with a guaranteed relative error, as DataDog's agents
use), a few kilobytes per series; recent frame times sit in a short ring.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from ddsketch import DDSketch

#: Percentiles are within this fraction of the true value (0.5 %: 40 ms reads 39.8-40.2).
RELATIVE_ACCURACY = 0.005
#: Finished-frame times kept for the recent frame rate.
RECENT_FRAMES = 30


class Series:
    """Count, mean, max and percentiles of a stream of non-negative values in O(1) memory."""

    __slots__ = ("count", "total", "largest", "last", "_sketch")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.largest = 0.0
        self.last = 0.0
        self._sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)

    def add(self, value: float) -> None:
        value = max(0.0, float(value))
        self.count += 1
        self.total += value
        self.largest = max(self.largest, value)
        self.last = value
        self._sketch.add(value)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100), 0 when empty."""
        if not self.count:
            return 0.0
        value = self._sketch.get_quantile_value(q / 100.0)
        return min(float(value or 0.0), self.largest)

    def __len__(self) -> int:
        return self.count


def _series(table: dict[str, Series], name: str) -> Series:
    """``table[name]``, made on first use."""
    series = table.get(name)
    if series is None:
        series = table[name] = Series()
    return series


@dataclass
class RunMetrics:
    """Collected while running; :meth:`report` summarises.

    Latency is measured from the capture timestamp (when the frame was decoded) to the moment
    every output has finished with the frame.
    """

    stage_ms: dict[str, Series] = field(default_factory=dict)
    latency_ms: Series = field(default_factory=Series)
    recent_finished: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_FRAMES))
    queue_depths: dict[str, Series] = field(default_factory=dict)
    waits_ms: dict[str, Series] = field(default_factory=dict)
    frames_out: int = 0
    started: float = 0.0
    ended: float = 0.0

    def add_packet(self, timings: dict[str, float], latency_ms: float, done: float) -> None:
        for stage, ms in timings.items():
            _series(self.stage_ms, stage).add(ms)
        self.latency_ms.add(latency_ms)
        self.recent_finished.append(done)
        self.frames_out += 1

    def add_stage(self, stage: str, ms: float) -> None:
        """A stage's time spent apart from any one packet (a detection applied late)."""
        _series(self.stage_ms, stage).add(ms)

    def add_wait(self, what: str, ms: float) -> None:
        """Time a stage spent waiting for ``what`` (not its own work: reported apart)."""
        _series(self.waits_ms, what).add(ms)

    def recent_fps(self, frames: int = RECENT_FRAMES) -> float:
        """Output frame rate over the last ``frames`` finished frames (0 before two)."""
        recent = list(self.recent_finished)[-frames:]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)

    def add_depth(self, queue: str, depth: int) -> None:
        _series(self.queue_depths, queue).add(depth)

    def report(self, frames_in: int, frames_dropped: int) -> dict:
        """The summary with the keys ``--stats-json`` promises."""
        # a run still going (a fleet asks while it runs) counts up to now
        ended = self.ended or time.perf_counter()
        seconds = max(ended - self.started, 1e-9)
        latency = self.latency_ms
        return {
            "frames_in": frames_in,
            "frames_out": self.frames_out,
            "frames_dropped": frames_dropped,
            "fps": round(self.frames_out / seconds, 2),
            "seconds": round(seconds, 3),
            "latency_ms": {"p50": round(latency.percentile(50), 2),
                           "p95": round(latency.percentile(95), 2),
                           "max": round(latency.largest, 2),
                           "mean": round(latency.mean, 2)},
            "stages": {name: {"mean_ms": round(s.mean, 3),
                              "p95_ms": round(s.percentile(95), 3),
                              "fps": round(1000.0 / max(s.mean, 1e-9), 1)}
                       for name, s in self.stage_ms.items() if s.count},
            "waits": {what: {"mean_ms": round(s.mean, 3), "p95_ms": round(s.percentile(95), 3)}
                      for what, s in self.waits_ms.items() if s.count},
            "queues": {name: {"mean": round(s.mean, 2), "max": int(s.largest)}
                       for name, s in self.queue_depths.items() if s.count},
        }
