"""Every counting line and watched area of one stream, fed the tracks frame by frame."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from detstream.engines.spec import Detections
from detstream.stream.analytics.areas import AreaSet, AreaSpec, WatchedArea
from detstream.stream.analytics.events import RuleEvent
from detstream.stream.analytics.geometry import anchor_points
from detstream.stream.analytics.lines import CountingLine, LineSet, LineSpec


class Rules:
    """One stream's lines and areas.

    Args:
        lines: the counting lines.
        areas: the watched areas.

    Example:
        >>> rules = Rules([LineSpec("door", (0, 240), (640, 240))], [])
        >>> events = rules.update(tracked, frame=12, time=0.4)   # RuleEvents
        >>> rules.report()["lines"]["door"]["in_total"]
    """

    def __init__(self, lines: Sequence[LineSpec] = (), areas: Sequence[AreaSpec] = ()) -> None:
        names = [spec.name for spec in (*lines, *areas)]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"two rules are named {repeated[0]!r}; give each line and area "
                             "its own name")
        self.lines = [CountingLine(spec) for spec in lines]
        self.areas = [WatchedArea(spec) for spec in areas]
        self._line_set = LineSet(self.lines)
        self._area_set = AreaSet(self.areas)
        self.events: Counter[str] = Counter()
        self._time = 0.0
        # update() runs in the tracking thread; report() may be read from another (live stats)
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.lines or self.areas)

    def update(self, detections: Detections, frame: int, time: float,
               ended: Iterable[int] = ()) -> list[RuleEvent]:
        """The tracks of ``frame`` (at ``time`` seconds), and the ids of the tracks that
        ended on it: every rule's events, lines first, in rule order."""
        with self._lock:
            return self._update(detections, frame, time, ended)

    def _update(self, detections: Detections, frame: int, time: float,
                ended: Iterable[int]) -> list[RuleEvent]:
        self._time = time
        ids = (detections.track_ids if detections.track_ids is not None
               else np.full(len(detections), -1, np.int64))
        classes = np.asarray(detections.class_ids)
        names = [detections.class_names[c] if 0 <= c < len(detections.class_names) else str(c)
                 for c in classes.tolist()]
        boxes = np.asarray(detections.boxes, dtype=np.float64).reshape(-1, 4)
        anchors: dict[str, np.ndarray] = {}

        def at(anchor: str) -> np.ndarray:
            if anchor not in anchors:
                anchors[anchor] = anchor_points(boxes, anchor)
            return anchors[anchor]

        events: list[RuleEvent] = []
        heights = boxes[:, 3] - boxes[:, 1]
        if self.lines:
            events += self._line_set.update(ids, classes, names,
                                            [at(line.spec.anchor) for line in self.lines],
                                            heights, frame, time)
        if self.areas:
            events += self._area_set.update(ids, classes, detections.class_names,
                                            [at(area.spec.anchor) for area in self.areas],
                                            frame, time)
        ended = list(ended)
        if ended:
            self._line_set.forget(ended)
            events += self._area_set.forget(ended, frame)
        self.events.update(event.kind for event in events)
        return events

    def report(self) -> dict:
        """Each line's counts and each area's occupancy, entries, exits and dwell times, and
        the events raised by kind (the run statistics' ``analytics``)."""
        with self._lock:
            return self._report()

    def _report(self) -> dict:
        return {"lines": {line.spec.name: line.counts() for line in self.lines},
                "areas": {area.spec.name: area.counts(self._time) for area in self.areas},
                "events": dict(sorted(self.events.items()))}

    def tallies(self) -> dict[str, tuple[int, ...]]:
        """What the frame shows, cheaply: ``(in, out)`` per line and ``(inside,)`` per area."""
        with self._lock:
            shown: dict[str, tuple[int, ...]] = {}
            for line in self.lines:
                counts = line.counts()
                shown[line.spec.name] = (counts["in_total"], counts["out_total"])
            for area in self.areas:
                shown[area.spec.name] = (sum(area.occupancy().values()),)
            return shown

    def state(self) -> dict:
        """What a resumed run carries on from: counts, entries, exits and events (the dwell
        times of past visits are not kept: the state is recorded after every frame)."""
        with self._lock:
            return self._state()

    def _state(self) -> dict:
        return {"lines": {line.spec.name: line.state() for line in self.lines},
                "areas": {area.spec.name: area.state() for area in self.areas},
                "events": dict(self.events)}

    def restore(self, state: dict) -> None:
        """Carry on from :meth:`state` (rules it does not name start from zero)."""
        for line in self.lines:
            if line.spec.name in state.get("lines", {}):
                line.restore(state["lines"][line.spec.name])
        for area in self.areas:
            if area.spec.name in state.get("areas", {}):
                area.restore(state["areas"][area.spec.name])
        self.events = Counter({str(k): int(v) for k, v in state.get("events", {}).items()})


def rules_for(lines: Sequence[LineSpec] | None, areas: Sequence[AreaSpec] | None,
              dwell: float | None = None, class_names: Sequence[str] | None = None
              ) -> Rules | None:
    """The :class:`Rules` a run's ``lines``, ``areas`` and ``dwell`` options ask for
    (``None``: none), each area without its own dwell taking ``dwell``.

    Raises:
        ValueError: a rule names a class that is not one of ``class_names`` (the model's).
    """
    if not lines and not areas:
        return None
    areas = [spec if spec.dwell is not None or dwell is None else replace(spec, dwell=dwell)
             for spec in areas or ()]
    if class_names is not None:
        for spec in (*(lines or ()), *areas):
            unknown = [c for c in spec.classes or () if c not in class_names]
            if unknown:
                shown = ", ".join(list(class_names)[:10]) + (
                    ", ..." if len(class_names) > 10 else "")
                raise ValueError(f"{spec.name}: {unknown[0]!r} is not a class of this model "
                                 f"({shown})")
    return Rules(lines or (), areas)
