"""A constant-velocity Kalman filter over many boxes at once (arrays, not objects).

Two state parametrisations, as in the trackers they come from:

- ``xyah`` (SORT/ByteTrack): centre x, centre y, aspect w/h, height, and their velocities;
  noise scales with the height.
- ``xywh`` (BoT-SORT): centre x, centre y, width, height, and their velocities; noise scales
  with the width for x-like terms and the height for y-like ones, which fits boxes whose aspect
  changes (people turning, shapes spinning).

All functions take ``mean`` [N, 8] and ``cov`` [N, 8, 8] and return new arrays.
"""

from __future__ import annotations

import numpy as np

from detstream.engines.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh

_DIAG = np.arange(8)
_XYAH_SCALE = np.array([1.0, 1.0, np.nan, 1.0])  # the aspect's noise is set apart


#: The smallest box side (pixels) and aspect ratio (w / h) a state may take.
MIN_SIDE = 1.0
MIN_ASPECT = 1e-3

class KalmanFilter:
    """Constant-velocity Kalman filter for N boxes.

    Args:
        state: ``xyah`` or ``xywh``.
        std_position: position noise as a fraction of the box size (per frame).
        std_velocity: velocity noise as a fraction of the box size (per frame).
    """

    def __init__(self, state: str = "xyah", std_position: float = 1.0 / 20,
                 std_velocity: float = 1.0 / 160) -> None:
        if state not in ("xyah", "xywh"):
            raise ValueError(f"state must be 'xyah' or 'xywh', got {state!r}")
        self.state = state
        self.std_position = std_position
        self.std_velocity = std_velocity

    # Per-box scales of the four measured quantities: [x, y, a|w, h].
    def _scales(self, measurement: np.ndarray) -> np.ndarray:
        if self.state == "xyah":
            return measurement[:, [3, 3, 3, 3]] * _XYAH_SCALE
        return measurement[:, [2, 3, 2, 3]]

    def _aspect_fix(self, std: np.ndarray, value: float) -> np.ndarray:
        if self.state == "xyah":
            std[:, 2] = value  # the aspect ratio is unitless: fixed noise
        return std

    def from_boxes(self, xyxy: np.ndarray) -> np.ndarray:
        """Measurements [N, 4] in the filter's parametrisation from ``xyxy`` boxes."""
        measurement = xyxy_to_cxcywh(xyxy)
        if self.state == "xyah":
            measurement[:, 2] /= np.maximum(measurement[:, 3], 1e-6)
        return measurement

    def to_boxes(self, mean: np.ndarray) -> np.ndarray:
        """``xyxy`` boxes [N, 4] from states [N, 8]."""
        cxcywh = mean[:, :4].copy()
        if self.state == "xyah":
            cxcywh[:, 2] *= cxcywh[:, 3]
        return cxcywh_to_xyxy(cxcywh)

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from measurements [N, 4]: zero velocity, wide uncertainty."""
        n = len(measurement)
        mean = np.zeros((n, 8))
        mean[:, :4] = measurement
        scale = self._scales(measurement)
        std = np.concatenate([self._aspect_fix(2 * self.std_position * scale, 1e-2),
                              self._aspect_fix(10 * self.std_velocity * scale, 1e-5)], axis=1)
        cov = np.zeros((n, 8, 8))
        cov[:, range(8), range(8)] = std ** 2
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead."""
        scale = self._scales(mean[:, :4])
        std = np.concatenate([self._aspect_fix(self.std_position * scale, 1e-2),
                              self._aspect_fix(self.std_velocity * scale, 1e-5)], axis=1)
        # F P F^T and F x with F = [[I, I], [0, I]], written out: the same sums as the
        # matrix products (each element adds at most two terms) at a fraction of the cost.
        mean = mean.copy()
        mean[:, :4] += mean[:, 4:]
        mean = self._positive_size(mean)
        cov = cov.copy()
        cov[:, :4, :] += cov[:, 4:, :]
        cov[:, :, :4] += cov[:, :, 4:]
        cov[:, _DIAG, _DIAG] += std ** 2
        return mean, cov

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Correct states [N, 8] with their matched measurements [N, 4]."""
        scale = self._scales(mean[:, :4])
        std = self._aspect_fix(self.std_position * scale, 1e-1)
        projected = cov[:, :4, :4].copy()  # H P H^T with H = [I 0]
        projected[:, range(4), range(4)] += std ** 2
        cross = cov[:, :, :4]  # P H^T, [N, 8, 4]
        # K = P H^T S^-1, solved rather than inverted (S is symmetric).
        gain = np.linalg.solve(projected, cross.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = measurement - mean[:, :4]
        mean = self._positive_size(mean + np.einsum("nij,nj->ni", gain, innovation))
        cov = cov - gain @ cov[:, :4, :]
        # Rounding leaves P - K H P a little asymmetric; left alone the asymmetry feeds on
        # itself over frames without detections (carried, --detect-every) until the gains are
        # nonsense. Symmetrising costs next to nothing.
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        return mean, cov

    def _positive_size(self, mean: np.ndarray) -> np.ndarray:
        """Hold every size at its smallest allowed value and stop it shrinking there.

        A box that shrinks fast (an object leaving through the frame's edge, its box clipped
        smaller every frame) would otherwise be extrapolated to a negative width or height
        within a few frames of going unseen.
        """
        low = np.array([MIN_ASPECT, MIN_SIDE] if self.state == "xyah" else [MIN_SIDE, MIN_SIDE])
        small = mean[:, 2:4] < low
        if small.any():
            mean[:, 2:4] = np.maximum(mean[:, 2:4], low)
            mean[:, 6:8] = np.where(small, np.maximum(mean[:, 6:8], 0.0), mean[:, 6:8])
        return mean

    @staticmethod
    def warp(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """Apply a 2x3 camera-motion affine (previous frame → current) to the states."""
        linear, shift = affine[:, :2], affine[:, 2]
        big = np.kron(np.eye(4), linear)  # rotate/scale every (x, y)-like pair
        mean = mean @ big.T
        mean[:, :2] += shift
        cov = big @ cov @ big.T
        return mean, cov
