"""Where objects stand, accumulated over time: a heatmap of the tracks' anchor points.

The frame is divided into cells of :data:`CELL_PX` pixels; every frame each tracked object
adds one to the cell its anchor (the box's bottom centre) lies in. With a half-life the
past fades: the counts halve every ``half_life_s`` seconds of the stream's clock, so the map
shows where objects have been lately. The map is drawn over the video as colour (blue for
rarely, red for most) and saved as a PNG over the last frame when the run ends.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from detstream.engines.spec import Detections
from detstream.stream.analytics.geometry import DEFAULT_ANCHOR, anchor_points

#: Side of a heatmap cell in frame pixels.
CELL_PX = 8
#: How opaque the colour is where objects stood, and the share of the hottest cell below which
#: a cell is left uncoloured.
OPACITY, HOT = 0.5, 0.05
#: Frames added between two refreshes of the coloured layer.
REFRESH_ADDS = 15


class Heatmap:
    """Anchor counts per cell, fading with ``half_life_s`` (``None``: never)."""

    def __init__(self, half_life_s: float | None = None, anchor: str = DEFAULT_ANCHOR) -> None:
        self.half_life_s = half_life_s
        self.anchor = anchor
        self.counts: np.ndarray | None = None
        self._time: float | None = None
        self._adds = 0  # frames added since the coloured layer was made
        self._layer: tuple[np.ndarray, np.ndarray] | None = None  # colour, where it shows
        self._lock = threading.Lock()  # added to in the output thread, drawn in the draw one

    def add(self, detections: Detections | None, size: tuple[int, int], time: float) -> None:
        """The tracked objects of a frame of ``size`` (width, height) at ``time`` seconds."""
        width, height = size
        shape = (-(-height // CELL_PX), -(-width // CELL_PX))
        with self._lock:
            if self.counts is None or self.counts.shape != shape:
                self.counts = np.zeros(shape, np.float32)
            if self.half_life_s and self._time is not None and time > self._time:
                self.counts *= np.float32(0.5 ** ((time - self._time) / self.half_life_s))
            self._time = time
            self._adds += 1
            if detections is None or not len(detections):
                return
            tracked = detections.track_ids >= 0
            points = anchor_points(detections.boxes[tracked], self.anchor)
            cells = np.floor(points / CELL_PX).astype(np.int64)
            inside = ((cells[:, 0] >= 0) & (cells[:, 0] < shape[1]) & (cells[:, 1] >= 0)
                      & (cells[:, 1] < shape[0]))
            np.add.at(self.counts, (cells[inside, 1], cells[inside, 0]), 1.0)

    def draw(self, image: np.ndarray) -> np.ndarray:
        """The map over ``image`` (in place): cells where objects stood in colour, half
        opaque, the rest left as it is; returns it. The coloured layer is made again at most
        every :data:`REFRESH_ADDS` frames added (it changes slowly), so a frame pays one
        blend (about 2 ms at 1080p)."""
        height, width = image.shape[:2]
        with self._lock:
            if self.counts is None or not self.counts.any():
                return image
            stale = (self._layer is None or self._layer[0].shape[:2] != (height, width)
                     or self._adds >= REFRESH_ADDS)
            counts = self.counts.copy() if stale else None
            if stale:
                self._adds = 0
        if counts is not None:
            # coloured at the cells' size, then scaled up: a 1080p refresh costs a few ms
            heat = cv2.GaussianBlur(np.log1p(counts) / float(np.log1p(counts.max())), (0, 0),
                                    1.0)
            cells = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
            size = (width, height)
            self._layer = (cv2.resize(cells, size, interpolation=cv2.INTER_LINEAR),
                           cv2.resize((heat > HOT).astype(np.uint8), size,
                                      interpolation=cv2.INTER_LINEAR))
        colour, hot = self._layer
        cv2.copyTo(cv2.addWeighted(image, 1.0 - OPACITY, colour, OPACITY, 0.0), hot, image)
        return image
