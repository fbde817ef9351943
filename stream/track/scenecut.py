"""Hard scene cuts from a cheap thumbnail comparison.

Each frame is reduced to a 32x18 grey thumbnail normalised to zero mean and unit variance (so
global brightness and contrast changes — lighting steps, exposure — do not count), and to a
coarse hue-saturation histogram. A cut is declared when the thumbnail's correlation with the
previous one collapses *and* the colour distribution changes: a pan or a passing object
changes one of the two a little, a new shot changes both a lot.
"""

from __future__ import annotations

import cv2
import numpy as np


class SceneCutDetector:
    """Detect hard cuts between consecutive frames.

    Args:
        min_correlation: below this thumbnail correlation (in [-1, 1]) the structure changed.
        min_histogram_distance: above this total-variation distance (in [0, 1]) of the
            hue-saturation histograms the colours changed.
    """

    def __init__(self, min_correlation: float = 0.5, min_histogram_distance: float = 0.25
                 ) -> None:
        self.min_correlation = min_correlation
        self.min_histogram_distance = min_histogram_distance
        self.reset()

    def reset(self) -> None:
        self._thumb: np.ndarray | None = None
        self._hist: np.ndarray | None = None
        self.last_correlation = 1.0
        self.last_distance = 0.0

    def _features(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        small = cv2.resize(frame, (32, 18), interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
        gray -= gray.mean()
        gray /= max(float(np.linalg.norm(gray)), 1e-6)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [8, 4], [0, 180, 0, 256]).ravel()
        return gray, hist / max(float(hist.sum()), 1.0)

    def is_cut(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` starts a new shot (never true for the first frame)."""
        thumb, hist = self._features(frame)
        cut = False
        if self._thumb is not None:
            self.last_correlation = float(thumb @ self._thumb)
            self.last_distance = 0.5 * float(np.abs(hist - self._hist).sum())
            cut = (self.last_correlation < self.min_correlation
                   and self.last_distance > self.min_histogram_distance)
        self._thumb, self._hist = thumb, hist
        return cut
