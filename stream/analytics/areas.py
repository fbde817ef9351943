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

import numpy as np

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


@dataclass
class _Track:
    inside: bool  # settled state
    class_id: int
    name: str
    seen: int  # last frame seen
    seen_time: float
    streak: int = 0  # frames in a row against the settled state
    streak_time: float = 0.0  # time of the first of them
    entered: float | None = None  # time it entered (inside)
    exceeded: bool = False


class WatchedArea:
    """One area's occupancy, entries, exits and dwell times, fed the tracks of each frame."""

    def __init__(self, spec: AreaSpec) -> None:
        self.spec = spec
        self.zone = Zone(spec.points)
        self._tracks: dict[int, _Track] = {}
        self.entries: Counter[str] = Counter()
        self.exits: Counter[str] = Counter()
        self._visits: list[float] = []  # dwell seconds of completed visits
        self._untracked: Counter[str] = Counter()  # detections without ids inside, this frame

    def update(self, track_ids: np.ndarray, class_ids: np.ndarray, names: list[str],
               anchors: np.ndarray, frame: int, time: float) -> list[RuleEvent]:
        """The tracks on ``frame`` (ids, classes and their names, anchor points [N, 2]): the
        entries, exits and loitering they made, as events."""
        events: list[RuleEvent] = []
        inside = (self.zone.contains(anchors) if len(anchors) else np.zeros(0, bool)).tolist()
        self._untracked = Counter()
        classes, tracks, dwell = self.spec.classes, self._tracks, self.spec.dwell
        for k, (track_id, now_inside) in enumerate(zip(track_ids.tolist(), inside,
                                                       strict=True)):
            name = names[k]
            if classes is not None and name not in classes:
                continue
            if track_id < 0:
                if now_inside:
                    self._untracked[name] += 1
                continue
            track = tracks.get(track_id)
            if (track is not None and now_inside == track.inside and not track.streak
                    and (not now_inside or dwell is None or track.exceeded)):
                track.seen, track.seen_time = frame, time  # settled, nothing to decide
                continue
            self._step(track_id, now_inside, int(class_ids[k]), name, frame, time, events)
        if frame % 8 == 0:  # the leave time is the last sighting's, whenever it is noticed
            for track_id, track in list(tracks.items()):
                if frame - track.seen > UNSEEN_FRAMES:
                    self._leave(track_id, track, frame, track.seen_time, events)
        return events

    def _step(self, track_id: int, inside: bool, class_id: int, name: str, frame: int,
              time: float, events: list[RuleEvent]) -> None:
        track = self._tracks.get(track_id)
        if track is None:
            track = self._tracks[track_id] = _Track(False, class_id, name, frame, time)
        track.class_id, track.name, track.seen, track.seen_time = class_id, name, frame, time
        if inside != track.inside:
            if track.streak == 0:
                track.streak_time = time
            track.streak += 1
            if track.streak >= SETTLE_FRAMES:
                track.streak = 0
                if inside:
                    track.inside, track.entered, track.exceeded = True, track.streak_time, False
                    self.entries[name] += 1
                    events.append(RuleEvent("zone_entered", self.spec.name, track_id, class_id,
                                            name, frame, track.streak_time))
                else:
                    self._leave(track_id, track, frame, track.streak_time, events, keep=True)
        else:
            track.streak = 0
        if track.inside and not track.exceeded and self.spec.dwell is not None:
            dwell = time - track.entered
            if dwell >= self.spec.dwell:
                track.exceeded = True
                events.append(RuleEvent("dwell_exceeded", self.spec.name, track_id, class_id,
                                        name, frame, time, dwell=dwell))

    def _leave(self, track_id: int, track: _Track, frame: int, time: float,
               events: list[RuleEvent], keep: bool = False) -> None:
        """The track leaves at ``time`` (``keep``: it is still tracked, outside)."""
        if track.inside:
            dwell = max(0.0, time - track.entered)
            self.exits[track.name] += 1
            self._visits.append(dwell)
            del self._visits[:-VISITS_KEPT]
            events.append(RuleEvent("zone_left", self.spec.name, track_id, track.class_id,
                                    track.name, frame, time, dwell=dwell))
        track.inside, track.entered, track.streak = False, None, 0
        if not keep:
            del self._tracks[track_id]

    def forget(self, track_id: int, frame: int) -> list[RuleEvent]:
        """The track has ended: it leaves, if inside, when it was last seen."""
        track = self._tracks.get(track_id)
        if track is None:
            return []
        events: list[RuleEvent] = []
        self._leave(track_id, track, frame, track.seen_time, events)
        return events

    def occupancy(self) -> dict[str, int]:
        """Tracks inside now per class (and detections inside this frame without a track)."""
        counts = Counter(t.name for t in self._tracks.values() if t.inside) + self._untracked
        return dict(sorted(counts.items()))

    def dwell_now(self, time: float) -> dict[int, float]:
        """Seconds each track inside has been inside, at ``time``."""
        return {i: time - t.entered for i, t in self._tracks.items() if t.inside}

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
