"""Association: vectorized IoU and thresholded linear assignment (scipy)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``xyxy`` boxes [N, 4]: [N]."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


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
