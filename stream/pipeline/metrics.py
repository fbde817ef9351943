"""Run metrics, read from the packets: per-stage time, end-to-end latency, frames, queues."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


@dataclass
class RunMetrics:
    """Collected while running; :meth:`report` summarises.

    Latency is measured from the capture timestamp (when the frame was decoded) to the moment
    every output has finished with the frame.
    """

    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    latency_ms: list[float] = field(default_factory=list)
    finished_at: list[float] = field(default_factory=list)
    queue_depths: dict[str, list[int]] = field(default_factory=dict)
    frames_out: int = 0
    started: float = 0.0
    ended: float = 0.0

    def add_packet(self, timings: dict[str, float], latency_ms: float, done: float) -> None:
        for stage, ms in timings.items():
            self.stage_ms.setdefault(stage, []).append(ms)
        self.latency_ms.append(latency_ms)
        self.finished_at.append(done)
        self.frames_out += 1

    def recent_fps(self, frames: int = 30) -> float:
        """Output frame rate over the last ``frames`` finished frames (0 before two)."""
        recent = self.finished_at[-frames:]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)

    def add_depth(self, queue: str, depth: int) -> None:
        self.queue_depths.setdefault(queue, []).append(depth)

    def report(self, frames_in: int, frames_dropped: int) -> dict:
        """The summary with the keys ``--stats-json`` promises."""
        seconds = max(self.ended - self.started, 1e-9)
        return {
            "frames_in": frames_in,
            "frames_out": self.frames_out,
            "frames_dropped": frames_dropped,
            "fps": round(self.frames_out / seconds, 2),
            "seconds": round(seconds, 3),
            "latency_ms": {"p50": round(_percentile(self.latency_ms, 50), 2),
                           "p95": round(_percentile(self.latency_ms, 95), 2),
                           "max": round(max(self.latency_ms, default=0.0), 2),
                           "mean": round(float(np.mean(self.latency_ms)) if self.latency_ms
                                         else 0.0, 2)},
            "stages": {name: {"mean_ms": round(float(np.mean(v)), 3),
                              "p95_ms": round(_percentile(v, 95), 3),
                              "fps": round(1000.0 / max(float(np.mean(v)), 1e-9), 1)}
                       for name, v in self.stage_ms.items() if v},
            "queues": {name: {"mean": round(float(np.mean(v)), 2), "max": int(max(v))}
                       for name, v in self.queue_depths.items() if v},
        }
