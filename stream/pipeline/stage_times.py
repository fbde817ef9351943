"""Stage times as they are shown: each stage's own work, and waits apart.

The pipeline's report (:meth:`~detstream.stream.pipeline.metrics.RunMetrics.report`) holds
``stages`` (each stage's own work, in ms per frame it worked on) and ``waits`` (time a stage
spent waiting for another's result: the track stage holding a frame for its detections). The
places that show them (``detstream run``'s table, the page's stage table, the benchmarks) go
through here, so that they show the same thing in the same order with the same words:

- the stages in pipeline order (capture, preprocess, infer, track, draw, output), whether
  their times came on the packets or beside them (with ``--detect-every 0`` on a live source
  the detector works beside the frames' path: its ``preprocess`` and ``infer`` times are in
  the metrics, not on any packet);
- on a live source the capture stage's time is a wait, not work: the source's reader thread
  decodes frames as they arrive, and capture waits for the next one (a pushed JPEG is
  decoded in capture, a few milliseconds of it). It is shown with the waits, as
  ``next frame``;
- waits on rows of their own, labelled as waits (:data:`WAIT_LABELS`).

Stage times are wall time, as the runner measures them: on a machine whose cores are all
busy they include the time a stage's thread waited for a core (under the fixed schedules
every stage but inference runs at nice +10).

:class:`RecentStages` gives the same split over the last few seconds of a running pipeline
(the page's stage table follows it live).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from detstream.stream.pipeline.metrics import RunMetrics, Series

#: The stages in the order frames go through them (others after these, by name).
STAGE_ORDER = ("capture", "preprocess", "infer", "track", "draw", "output")
#: The wait a live source's capture time is shown as.
NEXT_FRAME = "next frame"
#: What each wait is, in words (the key is the report's name for it).
WAIT_LABELS = {"inference": "track waited for a frame's detections",
               NEXT_FRAME: "capture waited for the live source's next frame"}

T = TypeVar("T")


def in_order(table: Mapping[str, T]) -> list[tuple[str, T]]:
    """``table``'s items, stages in :data:`STAGE_ORDER` first, then the rest by name."""
    rank = {name: i for i, name in enumerate(STAGE_ORDER)}
    return sorted(table.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def split_capture(stages: Mapping[str, T], waits: Mapping[str, T], live: bool
                  ) -> tuple[dict[str, T], dict[str, T]]:
    """``(stages, waits)``, with a live source's capture time moved to the waits as
    :data:`NEXT_FRAME` (see the module doc); unchanged for files."""
    stages, waits = dict(stages), dict(waits)
    if live and "capture" in stages:
        waits[NEXT_FRAME] = stages.pop("capture")
    return stages, waits


def stage_table(report: dict, live: bool = False) -> str:
    """The stage table ``detstream run`` prints: each stage's own work (mean and p95 ms per
    frame it worked on, and the frames per second that allows), then the waits."""
    stages, waits = split_capture(report.get("stages", {}), report.get("waits", {}), live)
    lines = [f"{'stage':<12}{'mean ms':>9}{'p95 ms':>9}{'FPS':>9}"]
    for name, stage in in_order(stages):
        lines.append(f"{name:<12}{stage['mean_ms']:>9.2f}{stage['p95_ms']:>9.2f}"
                     f"{stage['fps']:>9.1f}")
    detection = report.get("detection")
    if detection and "frames_detected" in detection:
        lines.append(f"detector: {detection['frames_detected']} of {report['frames_in']} "
                     f"frames; schedule: {detection['schedule']}")
    if waits:
        lines.append("waits (not work, not in the stage times above):")
        for name, wait in in_order(waits):
            label = WAIT_LABELS.get(name, name)
            lines.append(f"  {name:<10}{wait['mean_ms']:>9.2f}{wait['p95_ms']:>9.2f}   {label}")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Mark:
    """The running sums (count, total ms) of every series at one moment."""

    time: float
    stages: dict[str, tuple[int, float]]
    waits: dict[str, tuple[int, float]]


def _sums(table: dict[str, Series]) -> dict[str, tuple[int, float]]:
    # A copy first: other stage threads may add a series meanwhile.
    return {name: (series.count, series.total) for name, series in list(table.items())}


def _means(now: dict[str, tuple[int, float]], then: dict[str, tuple[int, float]],
           seconds: float) -> dict[str, dict[str, float]]:
    """Mean ms and rate (per second) of what was added between two marks; series with
    nothing added are left out."""
    out = {}
    for name, (count, total) in now.items():
        before_count, before_total = then.get(name, (0, 0.0))
        added = count - before_count
        if added > 0:
            out[name] = {"ms": round((total - before_total) / added, 2),
                         "per_s": round(added / seconds, 1)}
    return out


class RecentStages:
    """Each stage's mean time, and each wait's, over the last few seconds of a running
    pipeline, from its metrics' running sums (nothing is kept per frame).

    Call it with the pipeline's :class:`RunMetrics` as often as wanted (from one thread);
    it returns ``{"stages": {name: {"ms", "per_s"}}, "waits": {...}}`` in :func:`in_order`
    order: ``ms`` the mean per frame the stage worked on (per wait, for waits), ``per_s``
    how many frames a second it worked on. A stage that did nothing in the window is left
    out.

    Args:
        window_s: how far back the means go (at least; up to ``mark_every_s`` more).
        live: the source is live: capture's time is shown as the :data:`NEXT_FRAME` wait.
        mark_every_s: how often the running sums are noted.
        clock: seconds, as :func:`time.perf_counter` (tests give their own).
    """

    def __init__(self, window_s: float = 2.0, live: bool = True, mark_every_s: float = 0.25,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.window_s = window_s
        self.live = live
        self.mark_every_s = mark_every_s
        self._clock = clock
        self._marks: deque[_Mark] = deque([_Mark(clock(), {}, {})])

    def __call__(self, metrics: RunMetrics) -> dict[str, dict[str, dict[str, float]]]:
        now = self._clock()
        mark = _Mark(now, _sums(metrics.stage_ms), _sums(metrics.waits_ms))
        if now - self._marks[-1].time >= self.mark_every_s:
            self._marks.append(mark)
        while len(self._marks) > 1 and self._marks[1].time <= now - self.window_s:
            self._marks.popleft()
        base = self._marks[0]
        seconds = max(now - base.time, 1e-9)
        stages, waits = split_capture(_means(mark.stages, base.stages, seconds),
                                      _means(mark.waits, base.waits, seconds), self.live)
        return {"stages": dict(in_order(stages)), "waits": dict(in_order(waits))}


__all__ = ["NEXT_FRAME", "STAGE_ORDER", "WAIT_LABELS", "RecentStages", "in_order",
           "split_capture", "stage_table"]
