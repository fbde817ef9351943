"""The tracker interface: one instance per stream."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from detstream.engines.spec import Detections


class Tracker(ABC):
    """Give detections persistent identities, frame after frame, for one stream."""

    name: str

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
        """Forget every track and number new ones from 1 again (end of stream, new source).

        Within a stream identities are never reused: tracks ended by a scene cut keep theirs.
        """
