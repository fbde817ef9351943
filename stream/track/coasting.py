"""Coasting: lost tracks reported for a moment at the box their motion predicts.

A missed detection or a short occlusion would otherwise leave a hole in a track. Only
confirmed tracks coast, only briefly (``coast_seconds``), only while their motion has been
predicting their detections well (``coast_fit``), only while their box stays inside the frame
(``coast_inside``) and, optionally, only behind boxes tracked in the same frame
(``coast_cover``). Coasted rows are flagged ``data["coasted"]``.
"""

from __future__ import annotations

import numpy as np

from detstream.engines.boxes import box_area, intersection_matrix
from detstream.stream.track.config import ByteTrackConfig
from detstream.stream.track.kalman import KalmanFilter
from detstream.stream.track.table import LOST, TrackTable, rows_where


class Coasting:
    """Which lost tracks to report, with the tracker's parameters ``config`` and Kalman
    filter ``kf`` (for the predicted boxes)."""

    def __init__(self, config: ByteTrackConfig, kf: KalmanFilter) -> None:
        self.config = config
        self.kf = kf

    def select(self, tracks: TrackTable, seen: np.ndarray, frame: int, fps: float,
               frame_size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """Lost confirmed tracks, lost for at most ``coast_seconds``, whose predicted box lies
        ``coast_inside`` in the frame (of ``frame_size``, when known) and is covered at least
        ``coast_cover`` by the boxes ``seen`` on this ``frame``. Returns their rows and
        predicted boxes."""
        cfg = self.config
        limit = cfg.coast_seconds * fps
        rows = rows_where((tracks.status == LOST) & tracks.confirmed
                          & (frame - tracks.last_seen <= limit) & (tracks.fit >= cfg.coast_fit))
        if not len(rows):  # most frames
            return rows, np.empty((0, 4))
        boxes = self.kf.to_boxes(tracks.mean[rows])
        if cfg.coast_inside > 0 and frame_size is not None:
            width, height = frame_size
            clipped = np.clip(boxes, 0.0, [width, height, width, height])
            keep = box_area(clipped) >= cfg.coast_inside * box_area(boxes)
            rows, boxes = rows[keep], boxes[keep]
        if not len(rows) or cfg.coast_cover <= 0:
            return rows, boxes
        if not len(seen):
            return rows[:0], boxes[:0]
        inter = intersection_matrix(boxes, seen)
        keep = inter.max(axis=1) >= cfg.coast_cover * box_area(boxes)
        return rows[keep], boxes[keep]

    def add(self, tracks: TrackTable, live: np.ndarray, boxes: np.ndarray, frame: int,
            fps: float, frame_size: tuple[int, int] | None
            ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """The reported rows ``live`` (boxes ``boxes``) followed by the coasting ones, their
        boxes, and the output's ``data`` (``coasted`` per row; none when coasting is off)."""
        if self.config.coast_seconds <= 0:  # off
            return live, boxes, {}
        rows, guesses = self.select(tracks, boxes, frame, fps, frame_size)
        data = {"coasted": np.repeat([False, True], [len(live), len(rows)])}
        return np.concatenate([live, rows]), np.concatenate([boxes, guesses]), data
