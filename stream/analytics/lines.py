"""Counting lines: crossings per direction and class, once per track and direction.

A track crosses when its anchor (the box's bottom centre by default) is seen *clearly* on one
side of the line and later clearly on the other, with its path between the two sightings
meeting the drawn segment. "Clearly" means beyond a band around the line, a tenth of the
box's height wide (at least :data:`MIN_BAND_PX`): a box jittering or a track hovering on the
line never counts, and a track that coasts or is lost and found again on the other side
counts once, when it is seen there. Each track counts at most once per direction. A crossing's
frame and time are when the anchor's path met the line, between the two sightings (the band
and any hidden stretch would otherwise make it late).

Directions: ``in`` is crossing from the line's left to its right, seen walking from its first
point to its second on the image (a line drawn left to right counts downward motion as
``in``); ``out`` the other way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from detstream.stream.analytics.columns import TrackColumns
from detstream.stream.analytics.events import RuleEvent
from detstream.stream.analytics.geometry import DEFAULT_ANCHOR, crossing_share

#: The band around a line in which a point is on neither side: this share of the box's height,
#: and at least MIN_BAND_PX pixels.
BAND_FRACTION = 0.1
MIN_BAND_PX = 2.0
#: A track not seen for this many frames is forgotten (a tracker that reports its ended
#: tracks has them forgotten at once).
FORGET_AFTER_FRAMES = 900
DIRECTIONS = ("in", "out")


@dataclass(frozen=True)
class LineSpec:
    """A counting line as the user gives it.

    Attributes:
        name: what its counts and events are called.
        start, end: its two points, pixels of the source frame.
        classes: count only these class names (``None``: every class).
        anchor: the box point that crosses (see
            :data:`~detstream.stream.analytics.geometry.ANCHORS`).
    """

    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    classes: tuple[str, ...] | None = None
    anchor: str = DEFAULT_ANCHOR

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError(f"line {self.name!r} has the same start and end point")


class CountingLine:
    """One line: its geometry and its counts (:class:`LineSet` decides the crossings of every
    line of a stream at once)."""

    def __init__(self, spec: LineSpec) -> None:
        self.spec = spec
        self.start = np.asarray(spec.start, dtype=np.float64)
        self.end = np.asarray(spec.end, dtype=np.float64)
        self._counts: dict[str, Counter[str]] = {d: Counter() for d in DIRECTIONS}

    def count(self, direction: str, name: str) -> None:
        self._counts[direction][name] += 1

    def counts(self) -> dict:
        """``{"in": {class: n}, "out": {class: n}, "in_total": n, "out_total": n}``."""
        out: dict = {d: dict(sorted(self._counts[d].items())) for d in DIRECTIONS}
        for d in DIRECTIONS:
            out[f"{d}_total"] = sum(self._counts[d].values())
        return out

    def state(self) -> dict:
        """What a resumed run carries on from: the counts (tracks start anew)."""
        return {d: dict(self._counts[d]) for d in DIRECTIONS}

    def restore(self, state: dict) -> None:
        """Carry on from :meth:`state`'s counts."""
        for d in DIRECTIONS:
            self._counts[d] = Counter({str(k): int(v) for k, v in state.get(d, {}).items()})


#: Bits of ``LineSet``'s ``counted``: the directions a track has crossed a line in.
_COUNTED = {"in": 1, "out": 2}


class LineSet:
    """The crossings of every line of one stream, decided for all lines and tracks at once.

    Per line and track it keeps the side the track was last clearly seen on (0: not yet),
    its anchor then, and the directions already counted; see the module doc for the rules.

    Example:
        >>> lines = LineSet([CountingLine(LineSpec("door", (0, 240), (640, 240)))])
        >>> events = lines.update(ids, class_ids, names, anchors, heights, frame, time)
    """

    def __init__(self, lines: list[CountingLine]) -> None:
        self.lines = lines
        self.starts = np.stack([line.start for line in lines]) if lines else np.zeros((0, 2))
        self.directions = (np.stack([line.end - line.start for line in lines]) if lines
                           else np.zeros((0, 2)))
        self.lengths = np.hypot(self.directions[:, 0], self.directions[:, 1])
        self.state = TrackColumns(len(lines), {"side": (np.int8, 0, True),
                                               "x": (np.float64, 0.0, True),
                                               "y": (np.float64, 0.0, True),
                                               "t": (np.float64, 0.0, True),
                                               "f": (np.int64, 0, True),
                                               "counted": (np.uint8, 0, True),
                                               "seen": (np.int64, 0, False)})

    def update(self, track_ids: np.ndarray, class_ids: np.ndarray, names: list[str],
               anchors: list[np.ndarray], heights: np.ndarray, frame: int, time: float
               ) -> list[RuleEvent]:
        """The tracks on ``frame``: ids, classes and their names, each line's anchor points
        ([N, 2] per line), box heights. Returns the crossings they made, as events."""
        events: list[RuleEvent] = []
        tracked = np.asarray(track_ids) >= 0
        if self.lines and tracked.all():
            events = self._decide(np.asarray(track_ids), np.asarray(class_ids), names,
                                  np.stack(anchors), np.asarray(heights, np.float64), frame,
                                  time)
        elif self.lines and tracked.any():  # untracked boxes never cross
            events = self._decide(np.asarray(track_ids)[tracked],
                                  np.asarray(class_ids)[tracked],
                                  [n for n, t in zip(names, tracked, strict=True) if t],
                                  np.stack([a[tracked] for a in anchors]),
                                  np.asarray(heights, np.float64)[tracked], frame, time)
        if frame % 64 == 0:
            self.state.drop(np.flatnonzero(frame - self.state["seen"] > FORGET_AFTER_FRAMES))
        return events

    def _decide(self, ids: np.ndarray, class_ids: np.ndarray, names: list[str],
                anchors: np.ndarray, heights: np.ndarray, frame: int, time: float
                ) -> list[RuleEvent]:
        # signed distance of each anchor from each line: [lines, tracks]
        rel = anchors - self.starts[:, None, :]
        dx, dy = self.directions[:, 0:1], self.directions[:, 1:2]
        distance = (dx * rel[:, :, 1] - dy * rel[:, :, 0]) / self.lengths[:, None]
        band = np.maximum(MIN_BAND_PX, BAND_FRACTION * heights)[None, :]
        side = (distance > band).astype(np.int8) - (distance < -band).astype(np.int8)
        for row, line in enumerate(self.lines):  # lines that count some classes only
            if line.spec.classes is not None:
                side[row, [n not in line.spec.classes for n in names]] = 0
        state = self.state
        pos = state.positions(ids)
        state["seen"][pos] = frame
        stored = state["side"][:, pos]
        clear = side != 0
        events: list[RuleEvent] = []
        for row, k in zip(*np.nonzero(clear & (stored != 0) & (side != stored)), strict=True):
            event = self._crossed(row, int(pos[k]), int(ids[k]), int(side[row, k]),
                                  anchors[row, k], int(class_ids[k]), names[k], frame, time)
            if event is not None:
                events.append(event)
        rows = np.arange(len(self.lines))[:, None]
        state["side"][rows, pos] = np.where(clear, side, stored)
        state["x"][rows, pos] = np.where(clear, anchors[:, :, 0], state["x"][rows, pos])
        state["y"][rows, pos] = np.where(clear, anchors[:, :, 1], state["y"][rows, pos])
        state["t"][rows, pos] = np.where(clear, time, state["t"][rows, pos])
        state["f"][rows, pos] = np.where(clear, frame, state["f"][rows, pos])
        return events

    def _crossed(self, row: int, column: int, track_id: int, side: int, point: np.ndarray,
                 class_id: int, name: str, frame: int, time: float) -> RuleEvent | None:
        """Track ``track_id`` is clearly on the other side of line ``row`` now: a crossing
        when its path met the drawn segment and it has not crossed that way before. The
        event's frame and time are when the path met the line, between the last clear
        sighting on the other side and this one (a track hidden for a while as it crossed
        is counted on its return, at the moment it crossed)."""
        line, state = self.lines[row], self.state
        before = np.array([state["x"][row, column], state["y"][row, column]])
        share = crossing_share(line.start, line.end, before, point)
        if share is None:
            return None
        direction = "in" if side > 0 else "out"
        bit = _COUNTED[direction]
        if state["counted"][row, column] & bit:
            return None
        state["counted"][row, column] |= bit
        line.count(direction, name)
        then, at = float(state["t"][row, column]), int(state["f"][row, column])
        return RuleEvent("line_crossed", line.spec.name, track_id, class_id, name,
                         at + round(share * (frame - at)), then + share * (time - then),
                         direction=direction)

    def forget(self, track_ids: list[int]) -> None:
        """These tracks have ended (their ids never come back)."""
        columns = [c for c in (self.state.column(t) for t in track_ids) if c is not None]
        self.state.drop(np.asarray(columns, np.int64))
