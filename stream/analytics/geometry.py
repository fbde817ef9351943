"""Where a box stands, and which side of a line a point lies on."""

from __future__ import annotations

import numpy as np

#: Anchor points of a box, as fractions of its width and height from its top-left corner.
#: ``bottom_center`` (the default) is where a person or a car stands on the ground.
ANCHORS: dict[str, tuple[float, float]] = {
    "bottom_center": (0.5, 1.0),
    "center": (0.5, 0.5),
    "top_center": (0.5, 0.0),
    "bottom_left": (0.0, 1.0),
    "bottom_right": (1.0, 1.0),
}
DEFAULT_ANCHOR = "bottom_center"


def anchor_points(boxes: np.ndarray, anchor: str = DEFAULT_ANCHOR) -> np.ndarray:
    """The ``anchor`` point of each xyxy box ([N, 4]) as [N, 2] float64 pixels."""
    fx, fy = ANCHORS[anchor]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x = boxes[:, 0] + fx * (boxes[:, 2] - boxes[:, 0])
    y = boxes[:, 1] + fy * (boxes[:, 3] - boxes[:, 1])
    return np.stack([x, y], axis=1)


def signed_distance(start: np.ndarray, end: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance in pixels of each point ([N, 2]) from the infinite line through ``start`` and
    ``end``: negative on its left, positive on its right, seen walking from ``start`` to
    ``end`` on the image (y pointing down: a line drawn left to right has its left above)."""
    direction = end - start
    rel = np.asarray(points, dtype=np.float64).reshape(-1, 2) - start
    cross = direction[0] * rel[:, 1] - direction[1] * rel[:, 0]
    return cross / float(np.hypot(*direction))


def crossing_share(start: np.ndarray, end: np.ndarray, a: np.ndarray, b: np.ndarray
                   ) -> float | None:
    """Where the path from ``a`` to ``b`` (on opposite sides of the line) meets the line, as
    a share of the way from ``a`` (0 to 1); ``None`` when it meets it beyond ``start`` or
    ``end`` (on the line's extension, not the drawn segment)."""
    da, db = signed_distance(start, end, np.stack([a, b]))
    if da == db:
        return None
    share = float(da / (da - db))
    meet = a + share * (b - a)
    direction = end - start
    t = float(np.dot(meet - start, direction) / np.dot(direction, direction))
    return share if 0.0 <= t <= 1.0 else None
