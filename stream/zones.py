"""Zones: a polygon of the frame where objects count.

A detection belongs to a zone when its *anchor*, the middle of the box's bottom edge (where a
person or a car stands on the ground), lies inside the polygon, as in supervision's polygon
zones. A run with a zone drops the detections outside it before tracking, so tracks, outputs
and counts cover the zone only, and draws its outline on the annotated frames.

Example:
    >>> zone = Zone([(0, 0), (640, 0), (640, 360), (0, 360)])
    >>> inside = zone.keep(detections)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections

#: Outline colour (BGR) and width of a drawn zone.
ZONE_COLOUR = (0, 215, 255)
ZONE_WIDTH = 2


class Zone:
    """A polygon region of interest (pixels of the source frame).

    Args:
        points: three or more ``(x, y)`` corners, in order around the polygon (convex or
            not).

    Raises:
        UserInputError: fewer than three corners, or a polygon without area.
    """

    def __init__(self, points: Sequence[Sequence[float]]) -> None:
        corners = np.asarray(points, dtype=np.float64)
        if corners.ndim != 2 or corners.shape[1] != 2 or len(corners) < 3:
            raise UserInputError(f"a zone needs three or more x,y corners, got {points!r}")
        if abs(_area(corners)) < 1e-6:
            raise UserInputError("the polygon has no area; give corners around a region, "
                                 "in order")
        self.points = corners
        # each edge (x0, y0) -> (x1, y1), computed once: contains() runs every frame
        self._x0, self._y0 = corners[:, 0], corners[:, 1]
        self._x1, self._y1 = np.roll(self._x0, -1), np.roll(self._y0, -1)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Which of the points ``xy`` ([N, 2]) lie inside (even-odd rule; a point exactly on
        an edge may fall either side)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        x, y = xy[:, :1], xy[:, 1:]
        x0, y0, x1, y1 = self._x0, self._y0, self._x1, self._y1
        # a ray to the right of each point crosses the edge (x0,y0)-(x1,y1) when the edge
        # spans the point's height and meets it to the right of the point
        spans = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            meet = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        crossings = np.count_nonzero(spans & (x < meet), axis=1)
        return crossings % 2 == 1

    def keep(self, detections: Detections) -> Detections:
        """The detections whose anchor (bottom centre) lies inside."""
        if not len(detections):
            return detections
        boxes = detections.boxes
        anchors = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, boxes[:, 3]], axis=1)
        return detections[self.contains(anchors)]

    def draw(self, image: np.ndarray) -> np.ndarray:
        """Outline the zone on ``image`` (in place); returns it."""
        corners = np.round(self.points).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [corners], True, ZONE_COLOUR, ZONE_WIDTH, cv2.LINE_AA)
        return image


def _area(corners: np.ndarray) -> float:
    x, y = corners[:, 0], corners[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def parse_zone(text: str) -> tuple[tuple[float, float], ...]:
    """``--zone "x1,y1 x2,y2 x3,y3 ..."`` → corners (the ``zone`` option's own reading).

    Raises:
        UserInputError: not pairs of numbers, fewer than three, or no area.
    """
    from detstream.stream.options import OptionError, Polygon

    try:
        return Polygon().parse(text)
    except OptionError as exc:
        raise UserInputError(f"--zone {text!r}: {exc}") from None
