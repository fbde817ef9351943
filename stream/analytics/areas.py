"""Watched areas: who is inside, who came and went, and for how long.

A track is inside when its anchor (the box's bottom centre by default) lies in the polygon.
Entering and leaving are decided over :data:`SETTLE_FRAMES` frames in a row, so a box
flickering on the edge neither enters nor leaves; the times are those of the first of those
frames. A track that ends inside (or goes unseen for :data:`UNSEEN_FRAMES`) leaves at the
last time it was seen. Dwell time is the time from entering to leaving; a track inside for
longer than the area's ``dwell`` seconds raises one ``dwell_exceeded`` per visit (loitering).

(The run option ``zone`` is a different thing: a filter that drops the detections outside
one polygon before tracking.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from detstream.stream.analytics.columns import TrackColumns
from detstream.stream.analytics.events import RuleEvent
from detstream.stream.analytics.geometry import DEFAULT_ANCHOR
from detstream.stream.zones import Zone

#: Frames in a row a track must be inside (outside) to enter (leave).
SETTLE_FRAMES = 3
#: A track inside that is not seen for this many frames has left (when it was last seen).
UNSEEN_FRAMES = 60
#: Completed visits whose dwell times the statistics keep (the newest).
VISITS_KEPT = 10_000


@dataclass(frozen=True)
class AreaSpec:
    """A watched area as the user gives it.

    Attributes:
        name: what its counts and events are called.
        points: three or more corners, pixels of the source frame.
        classes: watch only these class names (``None``: every class).
        dwell: seconds inside after which a track raises ``dwell_exceeded`` (``None``: never).
        anchor: the box point that must be inside.
    """

    name: str
    points: tuple[tuple[float, float], ...]
    classes: tuple[str, ...] | None = None
    dwell: float | None = None
    anchor: str = DEFAULT_ANCHOR


class WatchedArea:
    """One area: its polygon, who is inside, its entries, exits and dwell times
    (:class:`AreaSet` decides, for every area of a stream at once)."""

    def __init__(self, spec: AreaSpec) -> None:
        self.spec = spec
        self.zone = Zone(spec.points)
        self.entries: Counter[str] = Counter()
        self.exits: Counter[str] = Counter()
        self.inside: dict[int, tuple[str, float]] = {}  # track id -> (class, time entered)
        self._visits: list[float] = []  # dwell seconds of completed visits
        self.untracked: Counter[str] = Counter()  # detections without ids inside, this frame
        self.present: Counter[str] = Counter()  # tracks inside and seen on this frame

    def enter(self, track_id: int, name: str, time: float) -> None:
        self.inside[track_id] = (name, time)
        self.entries[name] += 1

    def leave(self, track_id: int, time: float) -> tuple[str, float]:
        """The track leaves at ``time``: its class and dwell seconds."""
        name, entered = self.inside.pop(track_id)
        dwell = max(0.0, time - entered)
        self.exits[name] += 1
        self._visits.append(dwell)
        del self._visits[:-VISITS_KEPT]
        return name, dwell

    def occupancy(self) -> dict[str, int]:
        """What is inside on this frame, per class: the tracks inside that are reported on it
        and the detections without a track. A track unseen for a while is still on its visit
        (it may come back from behind something) but is not counted here: a count that
        waits for lost tracks to end reads high for seconds in a crowd."""
        counts = self.present + self.untracked
        return dict(sorted(counts.items()))

    def dwell_now(self, time: float) -> dict[int, float]:
        """Seconds each track inside has been inside, at ``time``."""
        return {track_id: time - entered for track_id, (_, entered) in self.inside.items()}

    def counts(self, time: float | None = None) -> dict:
        """Occupancy, entries and exits per class, and dwell seconds (p50 and max of the
        completed visits; with ``time``, also of those still inside)."""
        visits = list(self._visits)
        current = list(self.dwell_now(time).values()) if time is not None else []
        every = visits + current
        return {
            "occupancy": self.occupancy(), "entries": dict(sorted(self.entries.items())),
            "exits": dict(sorted(self.exits.items())),
            "entries_total": sum(self.entries.values()), "exits_total": sum(self.exits.values()),
            "dwell_p50_s": round(float(np.median(every)), 3) if every else None,
            "dwell_max_s": round(max(every), 3) if every else None,
            "visits": len(visits),
        }

    def state(self) -> dict:
        """What a resumed run carries on from: entries and exits (small enough to record after
        every frame; past visits' dwell times start again)."""
        return {"entries": dict(self.entries), "exits": dict(self.exits)}

    def restore(self, state: dict) -> None:
        """Carry on from :meth:`state`."""
        self.entries = Counter({str(k): int(v) for k, v in state.get("entries", {}).items()})
        self.exits = Counter({str(k): int(v) for k, v in state.get("exits", {}).items()})


class AreaMap:
    """Which areas each point lies in, from one image of the areas' bounding box whose pixels
    hold one bit per area (rasterised once at 1/16 pixel; a point on an edge may fall either
    side)."""

    def __init__(self, areas: list[WatchedArea]) -> None:
        corners = np.concatenate([area.zone.points for area in areas])
        self.origin = np.floor(corners.min(axis=0)).astype(np.int64)
        width, height = (np.ceil(corners.max(axis=0)).astype(np.int64) - self.origin + 1)
        dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64)
                     if np.iinfo(t).bits >= len(areas))
        self.bits = np.zeros((int(height), int(width)), dtype)
        mask = np.zeros(self.bits.shape, np.uint8)
        for row, area in enumerate(areas):
            mask[:] = 0
            points = np.round((area.zone.points - self.origin) * 16).astype(np.int32)
            cv2.fillPoly(mask, [points.reshape(-1, 1, 2)], 1, cv2.LINE_8, shift=4)
            self.bits |= mask.astype(dtype) << dtype(row)
        self.rows = np.arange(len(areas), dtype=dtype)[:, None]

    def member(self, points: np.ndarray) -> np.ndarray:
        """[areas, N] bool: whether each point ([N, 2] pixels) lies in each area."""
        xy = np.floor(points).astype(np.int64) - self.origin
        height, width = self.bits.shape
        valid = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
        found = np.zeros(len(points), self.bits.dtype)
        found[valid] = self.bits[xy[valid, 1], xy[valid, 0]]
        return ((found[None, :] >> self.rows) & 1).astype(bool)


class AreaSet:
    """Entries, exits and loitering in every area of one stream, decided for all areas and
    tracks at once (see the module doc for the rules)."""

    def __init__(self, areas: list[WatchedArea]) -> None:
        self.areas = areas
        self.map = AreaMap(areas) if areas else None
        self.dwell = np.array([np.inf if a.spec.dwell is None else a.spec.dwell
                               for a in areas], np.float64)[:, None]
        self.state = TrackColumns(len(areas), {"inside": (bool, False, True),
                                               "streak": (np.int16, 0, True),
                                               "streak_time": (np.float64, 0.0, True),
                                               "entered": (np.float64, np.nan, True),
                                               "exceeded": (bool, False, True),
                                               "seen": (np.int64, 0, False),
                                               "seen_time": (np.float64, 0.0, False),
                                               "class_id": (np.int64, 0, False)})
        self._names: tuple[str, ...] = ()
        self._watched: dict[tuple[str, ...], np.ndarray] = {}

    def _name(self, class_id: int) -> str:
        names = self._names
        return names[class_id] if 0 <= class_id < len(names) else str(class_id)

    def _eligible(self, class_ids: np.ndarray) -> np.ndarray:
        """[areas, N]: whether each area watches each detection's class."""
        eligible = np.ones((len(self.areas), len(class_ids)), bool)
        for row, area in enumerate(self.areas):
            if area.spec.classes is not None:
                key = (*area.spec.classes, "|", *self._names)
                if key not in self._watched:
                    self._watched[key] = np.array(
                        [i for i, n in enumerate(self._names) if n in area.spec.classes],
                        np.int64)
                eligible[row] = np.isin(class_ids, self._watched[key])
        return eligible

    def update(self, track_ids: np.ndarray, class_ids: np.ndarray,
               class_names: tuple[str, ...], anchors: list[np.ndarray], frame: int,
               time: float) -> list[RuleEvent]:
        """The tracks on ``frame`` (ids, classes, the model's class names, each area's anchor
        points [N, 2]): the entries, exits and loitering they made, as events."""
        events: list[RuleEvent] = []
        if not self.areas:
            return events
        self._names = tuple(class_names)
        track_ids, class_ids = np.asarray(track_ids), np.asarray(class_ids)
        anchor = anchors[0]
        member = (self.map.member(anchor) if all(a is anchor for a in anchors) else
                  np.stack([self.map.member(a)[row] for row, a in enumerate(anchors)]))
        eligible = self._eligible(class_ids)
        member &= eligible
        tracked = track_ids >= 0
        for area in self.areas:
            area.untracked, area.present = Counter(), Counter()
        if not tracked.all():
            for row, k in zip(*np.nonzero(member & ~tracked[None, :]), strict=True):
                self.areas[row].untracked[self._name(int(class_ids[k]))] += 1
        if tracked.any():
            self._decide(track_ids[tracked], class_ids[tracked], member[:, tracked],
                         eligible[:, tracked], frame, time, events)
            seen_classes = class_ids[tracked]
            for row, k in zip(*np.nonzero(member[:, tracked]), strict=True):
                self.areas[row].present[self._name(int(seen_classes[k]))] += 1
        if frame % 8 == 0:  # the leave time is the last sighting's, whenever it is noticed
            state = self.state
            self._leave_all(np.flatnonzero(frame - state["seen"] > UNSEEN_FRAMES), frame,
                            events)
        return events

    def _decide(self, ids: np.ndarray, class_ids: np.ndarray, now: np.ndarray,
                eligible: np.ndarray, frame: int, time: float,
                events: list[RuleEvent]) -> None:
        state = self.state
        pos = state.positions(ids)
        state["seen"][pos], state["seen_time"][pos] = frame, time
        state["class_id"][pos] = class_ids
        rows = np.arange(len(self.areas))[:, None]
        stored = state["inside"][:, pos]
        differs = eligible & (now != stored)
        streak = state["streak"][:, pos]
        began = np.where(differs & (streak == 0), time, state["streak_time"][:, pos])
        streak = np.where(differs, streak + 1, np.where(eligible, 0, streak))
        settled = differs & (streak >= SETTLE_FRAMES)
        streak[settled] = 0
        state["streak"][rows, pos], state["streak_time"][rows, pos] = streak, began
        for row, k in zip(*np.nonzero(settled), strict=True):
            column, track_id, at = int(pos[k]), int(ids[k]), float(began[row, k])
            if now[row, k]:
                self._enter(row, column, track_id, at, frame, events)
            else:
                self._leave(row, column, track_id, at, frame, events)
        entered = state["entered"][:, pos]
        loitering = (state["inside"][:, pos] & ~state["exceeded"][:, pos] & eligible
                     & (time - entered >= self.dwell))
        for row, k in zip(*np.nonzero(loitering), strict=True):
            column = int(pos[k])
            state["exceeded"][row, column] = True
            area, class_id = self.areas[row], int(class_ids[k])
            events.append(RuleEvent("dwell_exceeded", area.spec.name, int(ids[k]), class_id,
                                    self._name(class_id), frame, time,
                                    dwell=time - float(entered[row, k])))

    def _enter(self, row: int, column: int, track_id: int, time: float, frame: int,
               events: list[RuleEvent]) -> None:
        state, area = self.state, self.areas[row]
        class_id = int(state["class_id"][column])
        state["inside"][row, column], state["entered"][row, column] = True, time
        state["exceeded"][row, column] = False
        area.enter(track_id, self._name(class_id), time)
        events.append(RuleEvent("zone_entered", area.spec.name, track_id, class_id,
                                self._name(class_id), frame, time))

    def _leave(self, row: int, column: int, track_id: int, time: float, frame: int,
               events: list[RuleEvent]) -> None:
        state, area = self.state, self.areas[row]
        state["inside"][row, column], state["entered"][row, column] = False, np.nan
        state["streak"][row, column] = 0
        name, dwell = area.leave(track_id, time)
        events.append(RuleEvent("zone_left", area.spec.name, track_id,
                                int(state["class_id"][column]), name, frame, time,
                                dwell=dwell))

    def _leave_all(self, columns: np.ndarray, frame: int, events: list[RuleEvent]) -> None:
        """These tracks are gone: each leaves every area it is in, when it was last seen."""
        state = self.state
        for column in columns.tolist():
            for row in np.flatnonzero(state["inside"][:, column]).tolist():
                self._leave(row, column, int(state.ids[column]),
                            float(state["seen_time"][column]), frame, events)
        state.drop(columns)

    def forget(self, track_ids: list[int], frame: int) -> list[RuleEvent]:
        """These tracks have ended: they leave, where inside, when they were last seen."""
        events: list[RuleEvent] = []
        columns = [c for c in (self.state.column(t) for t in track_ids) if c is not None]
        if self.areas and columns:
            self._leave_all(np.asarray(sorted(columns), np.int64), frame, events)
        return events
