"""Lifecycle events (:class:`~.base.TrackEvent`) of confirmed tracks, frame to frame."""

from __future__ import annotations

from detstream.stream.track.base import TrackEvent
from detstream.stream.track.table import LOST, TrackTable


class EventLog:
    """Compares the confirmed tracks' states with the previous frame's to tell what changed:
    ``started``, ``lost``, ``recovered``, ``ended``."""

    def __init__(self) -> None:
        self.known: dict[int, tuple[int, int]] = {}  # confirmed id -> (status, class)

    def clear(self) -> None:
        """Forget every track (a new stream: nothing ends)."""
        self.known = {}

    def record(self, tracks: TrackTable) -> list[TrackEvent]:
        """This frame's events, from the confirmed ``tracks`` now and before."""
        now = {i: (s, c) for i, s, c, ok
               in zip(tracks.ids.tolist(), tracks.status.tolist(), tracks.cls.tolist(),
                      tracks.confirmed.tolist(), strict=True) if ok}
        events = []
        for track_id, (status, cls) in now.items():
            before = self.known.get(track_id)
            if before is None:
                events.append(TrackEvent("started", track_id, cls))
                if status == LOST:
                    events.append(TrackEvent("lost", track_id, cls))
            elif before[0] != status:
                events.append(TrackEvent("lost" if status == LOST else "recovered", track_id,
                                         cls))
        events += [TrackEvent("ended", track_id, cls)
                   for track_id, (_, cls) in self.known.items() if track_id not in now]
        self.known = now
        return events
