"""Association: thresholded linear assignment (scipy) and buffered IoU (plain IoU and
intersection matrices are in :mod:`detstream.engines.boxes`)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from detstream.engines.boxes import box_area, intersection


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
    free_r = np.ones(rows, bool)
    free_r[r] = False
    free_c = np.ones(cols, bool)
    free_c[c] = False
    return np.stack([r, c], axis=1), free_r.nonzero()[0], free_c.nonzero()[0]


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
    inter = intersection(a[:, None, :], b)
    return inter / np.maximum(box_area(a)[:, None] + box_area(b) - inter, 1e-9)
