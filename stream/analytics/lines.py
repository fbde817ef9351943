"""Counting lines: crossings per direction and class, once per track and direction.

A track crosses when its anchor (the box's bottom centre by default) is seen *clearly* on one
side of the line and later clearly on the other, with its path between the two sightings
meeting the drawn segment. "Clearly" means beyond a band around the line, a tenth of the
box's height wide (at least :data:`MIN_BAND_PX`): a box jittering or a track hovering on the
line never counts, and a track that coasts or is lost and found again on the other side
counts once, when it is seen there. Each track counts at most once per direction.

Directions: ``in`` is crossing from the line's left to its right, seen walking from its first
point to its second on the image (a line drawn left to right counts downward motion as
``in``); ``out`` the other way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from detstream.stream.analytics.events import RuleEvent
from detstream.stream.analytics.geometry import (
    DEFAULT_ANCHOR,
    crosses_segment,
    signed_distance,
)

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


@dataclass
class _Track:
    side: int  # -1 left, +1 right: the last side it was clearly seen on
    point: np.ndarray  # its anchor then
    seen: int  # the last frame it was seen on
    counted: set[str] = field(default_factory=set)


class CountingLine:
    """One line's crossings, fed the tracks of each frame.

    Example:
        >>> line = CountingLine(LineSpec("door", (0, 240), (640, 240)))
        >>> events = line.update(track_ids, class_ids, names, anchors, heights, frame, t)
        >>> line.counts()["in"]          # {"person": 3, ...}
    """

    def __init__(self, spec: LineSpec) -> None:
        self.spec = spec
        self.start = np.asarray(spec.start, dtype=np.float64)
        self.end = np.asarray(spec.end, dtype=np.float64)
        self._tracks: dict[int, _Track] = {}
        self._counts: dict[str, Counter[str]] = {d: Counter() for d in DIRECTIONS}

    def update(self, track_ids: np.ndarray, class_ids: np.ndarray, names: list[str],
               anchors: np.ndarray, heights: np.ndarray, frame: int, time: float
               ) -> list[RuleEvent]:
        """The tracks on ``frame`` (ids, classes and their names, anchor points [N, 2], box
        heights): the crossings they made, as events."""
        events: list[RuleEvent] = []
        if len(track_ids):
            distances = signed_distance(self.start, self.end, anchors)
            bands = np.maximum(MIN_BAND_PX, BAND_FRACTION * np.asarray(heights, np.float64))
            # every side at once; the loop below only looks each track up
            sides = ((distances > bands).astype(np.int8)
                     - (distances < -bands).astype(np.int8)).tolist()
            classes = self.spec.classes
            tracks = self._tracks
            for k, (track_id, side) in enumerate(zip(track_ids.tolist(), sides, strict=True)):
                if track_id < 0 or (classes is not None and names[k] not in classes):
                    continue
                track = tracks.get(track_id)
                if track is not None:
                    track.seen = frame
                    if side == 0 or side == track.side:
                        if side:
                            track.point = anchors[k]
                        continue
                elif side == 0:  # first seen on the line: nothing decided yet
                    continue
                else:
                    tracks[track_id] = _Track(side, anchors[k], frame)
                    continue
                event = self._crossed(track, track_id, side, anchors[k], int(class_ids[k]),
                                      names[k], frame, time)
                if event is not None:
                    events.append(event)
        self._forget_unseen(frame)
        return events

    def _crossed(self, track: _Track, track_id: int, side: int, point: np.ndarray,
                 class_id: int, name: str, frame: int, time: float) -> RuleEvent | None:
        """The track is clearly on the other side now: a crossing when its path met the
        drawn segment and it has not crossed that way before."""
        event = None
        if crosses_segment(self.start, self.end, track.point, point):
            direction = "in" if side > 0 else "out"
            if direction not in track.counted:
                track.counted.add(direction)
                self._counts[direction][name] += 1
                event = RuleEvent("line_crossed", self.spec.name, track_id, class_id, name,
                                  frame, time, direction=direction)
        track.side, track.point = side, point
        return event

    def forget(self, track_id: int) -> None:
        """The track has ended (its id never comes back)."""
        self._tracks.pop(track_id, None)

    def _forget_unseen(self, frame: int) -> None:
        if len(self._tracks) > 64 or frame % 64 == 0:
            stale = [t for t, s in self._tracks.items() if frame - s.seen > FORGET_AFTER_FRAMES]
            for track_id in stale:
                del self._tracks[track_id]

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
