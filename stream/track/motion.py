"""Global camera motion between consecutive frames: sparse optical flow on a downscaled grey
frame and a RANSAC similarity fit (OpenCV), with moving objects masked out.

The estimate is a 2x3 affine mapping points of the previous frame to the current one, in full
frame pixels; trackers apply it to their predicted states (BoT-SORT's camera-motion
compensation), so a panning camera does not look like every object jumping.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import cv2
import numpy as np

from detstream.engines.process.letterbox import resize

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
#: Width of the small view trackers look at for camera motion and scene cuts.
VIEW_WIDTH = 320


def small_view(frame: np.ndarray, width: int = VIEW_WIDTH) -> tuple[np.ndarray, float]:
    """``frame`` shrunk to ``width`` pixels across (never enlarged), and the scale applied.

    One shrink of the colour frame serves camera motion and scene cuts alike: at 1920x1080
    it costs 0.5 ms of CPU, where a grey conversion of the whole frame and its own shrink
    (1.1 ms) plus a second shrink for the scene-cut thumbnail (1.7 ms) cost 2.8.
    """
    scale = min(1.0, width / frame.shape[1])
    if scale == 1.0:
        return frame, 1.0
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    return resize(frame, size), scale


class FrameMemo:
    """What a tracker worked out from a frame (its small view, the camera motion), kept for
    the frame tracked again: a late detection replays the frames since
    (:mod:`~detstream.stream.pipeline.late`). Keyed by the frame array itself, held weakly
    (nothing is kept alive); shared, not copied, by a tracker's snapshots."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[int, tuple[weakref.ref, dict]] = OrderedDict()

    def get(self, frame: np.ndarray) -> dict | None:
        item = self._items.get(id(frame))
        if item is None or item[0]() is not frame:
            return None
        return item[1]

    def put(self, frame: np.ndarray, value: dict) -> None:
        self._items[id(frame)] = (weakref.ref(frame), value)
        self._items.move_to_end(id(frame))
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __deepcopy__(self, memo: dict) -> FrameMemo:
        return self


class CameraMotion:
    """Estimate frame-to-frame camera motion.

    Args:
        width: frames are downscaled to this width first (speed; the fit is done at this scale
            and converted back).
        max_corners, quality, min_distance: Shi-Tomasi corner settings.
        min_points: fewer tracked points than this gives the identity (no estimate).
    """

    def __init__(self, width: int = 320, max_corners: int = 200, quality: float = 0.01,
                 min_distance: int = 6, min_points: int = 12) -> None:
        self.width = width
        self.max_corners = max_corners
        self.quality = quality
        self.min_distance = min_distance
        self.min_points = min_points
        self.reset()

    def reset(self) -> None:
        self._prev: np.ndarray | None = None
        self._points: np.ndarray | None = None

    def state(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """What the next estimate starts from (the last view and the points chosen on it)."""
        return self._prev, self._points

    def restore(self, state: tuple[np.ndarray | None, np.ndarray | None]) -> None:
        """Start the next estimate from a :meth:`state` (the arrays are not changed)."""
        self._prev, self._points = state

    def estimate(self, frame: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
        """The affine from the previous frame to ``frame`` (identity for the first frame).

        Args:
            frame: uint8 [H, W, 3] BGR (or [H, W] grey).
            boxes: float [N, 4] ``xyxy`` of this frame's detections, masked out when
                choosing the points to follow in the next frame.
        """
        small, scale = small_view(frame, self.width)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        affine = IDENTITY.copy()
        if self._prev is not None and self._points is not None and len(self._points):
            moved, found, _ = cv2.calcOpticalFlowPyrLK(self._prev, small, self._points, None,
                                                       winSize=(15, 15), maxLevel=3)
            ok = found.reshape(-1) == 1
            if ok.sum() >= self.min_points:
                fit, inliers = cv2.estimateAffinePartial2D(
                    self._points[ok], moved[ok], method=cv2.RANSAC,
                    ransacReprojThreshold=1.0, maxIters=200, confidence=0.99)
                if fit is not None and inliers is not None and inliers.sum() >= self.min_points:
                    affine = fit.astype(np.float64)
                    affine[:, 2] /= scale  # translation back to full-frame pixels
        mask = None
        if boxes is not None and len(boxes):
            mask = np.full(small.shape, 255, np.uint8)
            for x1, y1, x2, y2 in np.round(np.asarray(boxes) * scale).astype(int):
                mask[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = 0
        self._points = cv2.goodFeaturesToTrack(small, self.max_corners, self.quality,
                                               self.min_distance, mask=mask)
        self._prev = small
        return affine
