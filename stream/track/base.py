"""The tracker interface: one instance per stream."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detstream.engines.spec import Detections

#: The lifecycle of a track, in the order a track can go through it.
EVENT_KINDS = ("started", "lost", "recovered", "ended")


@dataclass(frozen=True)
class TrackEvent:
    """A change in one track's life on this frame.

    Attributes:
        kind: ``started`` (confirmed: its id appears from now on), ``lost`` (not seen on this
            frame; the tracker still looks for it), ``recovered`` (seen again after being
            lost, same id), ``ended`` (given up: lost for too long, a scene cut, or a
            duplicate of another track; its id never comes back).
        track_id: the track's id.
        class_id: its class at the time.
    """

    kind: str
    track_id: int
    class_id: int

    def to_dict(self) -> dict:
        return {"event": self.kind, "track_id": self.track_id, "class_id": self.class_id}


class Tracker(ABC):
    """Give detections persistent identities, frame after frame, for one stream.

    Attributes:
        events: the :class:`TrackEvent` s of the last :meth:`update` or :meth:`carry`, for
            confirmed tracks only (a candidate that never got an id has no events).
    """

    name: str
    events: Sequence[TrackEvent] = ()

    @abstractmethod
    def update(self, detections: Detections, frame: np.ndarray | None = None) -> Detections:
        """Associate this frame's detections with the tracks.

        Args:
            detections: the frame's detections (frame pixels); their ``track_ids`` are ignored.
            frame: the BGR image, for camera-motion compensation and scene-cut detection
                (both are skipped without it).

        Returns:
            The confirmed tracks seen in this frame, with ``track_ids`` (>= 1).
        """

    @abstractmethod
    def carry(self, detections_like: Detections | None = None,
              frame: np.ndarray | None = None) -> Detections:
        """Advance one frame on which the detector did not run; tracks at predicted boxes."""

    @abstractmethod
    def reset(self) -> None:
        """Forget every track and number new ones from the first id again (1, or the
        tracker's ``first_id``; end of stream, new source).

        Within a stream identities are never reused: tracks ended by a scene cut keep theirs.
        """

    def snapshot(self) -> object:
        """The tracker's whole state now, for :meth:`restore` (a detection that comes back
        a few frames late is applied to the tracks as they were on its frame)."""
        return copy.deepcopy(self.__dict__)

    def restore(self, state: object) -> None:
        """Go back to a :meth:`snapshot`. The snapshot is taken over, not copied: restore
        each one at most once."""
        self.__dict__.clear()
        self.__dict__.update(state)
