"""Association: vectorized IoU and thresholded linear assignment (scipy)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``xyxy`` boxes [..., 4]: [...]."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection area of every box in ``a`` [N, 4] with every box in ``b`` [M, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.clip(rb - lt, 0, None).prod(axis=2)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` [N, 4] with every box in ``b`` [M, 4] (``xyxy``): [N, M]."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    inter = intersection_matrix(a, b)
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching keeping only pairs with ``cost <= max_cost``.

    Returns:
        ``(pairs [K, 2] of (row, column), unmatched rows, unmatched columns)``.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return np.empty((0, 2), int), np.arange(rows), np.arange(cols)
    r, c = linear_sum_assignment(cost)
    keep = cost[r, c] <= max_cost
    r, c = r[keep], c[keep]
    unmatched_r = np.setdiff1d(np.arange(rows), r, assume_unique=True)
    unmatched_c = np.setdiff1d(np.arange(cols), c, assume_unique=True)
    return np.stack([r, c], axis=1), unmatched_r, unmatched_c


def buffered_iou_matrix(tracks: np.ndarray, dets: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """IoU after growing both boxes of each pair by the track's margins (buffered IoU).

    A track's position is only known to within its uncertainty, which grows every frame it
    goes unseen. Growing both boxes of a pair by the same margin keeps perfectly aligned boxes
    at IoU 1 while letting a detection that lies within the track's uncertainty still overlap
    it, so a lost track that moved differently than predicted can be found again.

    Args:
        tracks: ``xyxy`` [N, 4].
        dets: ``xyxy`` [M, 4].
        margins: [N, 2], growth of each side in x and y for each track's pairs.

    Returns:
        [N, M] IoU of the grown pairs.
    """
    if len(tracks) == 0 or len(dets) == 0:
        return np.zeros((len(tracks), len(dets)))
    grow = np.concatenate([-margins, margins], axis=1)  # [N, 4]
    a = tracks + grow  # [N, 4]
    b = dets[None, :, :] + grow[:, None, :]  # [N, M, 4]
    lt = np.maximum(a[:, None, :2], b[..., :2])
    rb = np.minimum(a[:, None, 2:], b[..., 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    return inter / np.maximum(area(a)[:, None] + area(b) - inter, 1e-9)
