"""The heatmap's output: each frame's tracks added to a
:class:`~detstream.stream.analytics.heatmap.Heatmap`, saved as a PNG at the end."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from detstream.stream.analytics.heatmap import Heatmap
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import FileSink


class HeatmapSink(FileSink):
    """Adds each frame's tracks to a :class:`Heatmap` and, at the end, saves it drawn over the
    last frame as a PNG (``--heatmap FILE.png``)."""

    name = "heatmap"
    label = "heatmap image"

    def __init__(self, path: str | Path, heatmap: Heatmap, fps: float | None = None) -> None:
        self.path = Path(path)
        self.heatmap = heatmap
        self.fps = fps or 30.0
        self._last: np.ndarray | None = None
        self._closed = False

    def write(self, packet: FramePacket) -> None:
        height, width = packet.image.shape[:2]
        time = packet.pts if packet.pts is not None else packet.index / self.fps
        self.heatmap.add(packet.detections, (width, height), float(time))
        self._last = packet.image

    def close(self) -> None:
        if self._closed or self._last is None:
            return
        self._closed = True
        picture = self.heatmap.draw(self._last.copy())
        if not cv2.imwrite(str(self.path), picture):
            raise OSError(f"could not write {self.path}")
