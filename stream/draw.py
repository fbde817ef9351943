"""Drawing: boxes coloured per track (or class), labels with class, score and id, fading track
trails, and an optional FPS/latency overlay. OpenCV, in place on a copy of the frame.

One :class:`Annotator` per stream (it remembers trails).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from detstream.engines.spec import Detections
from detstream.stream.options import Choice, Number, Switch, check_fields, option

# 20 colours that stay apart on light and dark backgrounds (BGR).
PALETTE = np.array([
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
    (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0),
    (168, 153, 44), (255, 194, 0), (147, 69, 52), (255, 115, 100), (236, 24, 0),
    (255, 56, 132), (133, 0, 82), (255, 56, 203), (200, 149, 255), (199, 55, 255),
], np.uint8)


@dataclass(frozen=True)
class DrawConfig:
    """What to draw (each field a run option: :mod:`detstream.stream.options`).

    Attributes:
        labels: class name, score and track id above each box.
        trails: length of the fading centre trail per track, in frames (0: none).
        colour_by: ``track`` (falls back to class for untracked boxes) or ``class``.
        overlay: FPS and latency in the top-left corner.
    """

    labels: bool = option(True, Switch(), "no class, score and id labels above the boxes",
                          "run")
    trails: int = option(30, Number(minimum=0, maximum=1000, whole=True),
                         "length of each track's fading trail, in frames (0: none)", "run",
                         "page", metavar="FRAMES")
    colour_by: str = option("track", Choice(("track", "class"), noun="colouring"),
                            "colour boxes by track id or by class", "run")
    overlay: bool = option(True, Switch(), "no FPS/latency overlay", "run")

    def __post_init__(self) -> None:
        check_fields(self)


class Annotator:
    """Draw detections on frames of one stream."""

    def __init__(self, config: DrawConfig | None = None) -> None:
        self.config = config or DrawConfig()
        self._trails: dict[int, deque[tuple[int, int]]] = {}

    def reset(self) -> None:
        self._trails.clear()

    def _colour(self, class_id: int, track_id: int) -> tuple[int, int, int]:
        key = track_id if self.config.colour_by == "track" and track_id >= 0 else class_id
        return tuple(int(c) for c in PALETTE[key % len(PALETTE)])

    def draw(self, image: np.ndarray, detections: Detections,
             overlay: str | None = None) -> np.ndarray:
        """A copy of ``image`` (uint8 [H, W, 3] BGR) with ``detections`` drawn on it."""
        out = image.copy()
        h = out.shape[0]
        thick = max(1, round(h / 360))
        font = max(0.35, h / 1400)
        self._update_trails(detections)
        if self.config.trails:
            for track_id, points in self._trails.items():
                if len(points) < 2:
                    continue
                colour = self._colour(0, track_id)
                pts = list(points)
                for i in range(1, len(pts)):  # older segments thinner: a fading tail
                    width = max(1, round(thick * 2 * i / len(pts)))
                    cv2.line(out, pts[i - 1], pts[i], colour, width, cv2.LINE_AA)
        boxes = np.round(detections.boxes).astype(int)
        names = detections.labels
        coasted = detections.data.get("coasted")
        for k in range(len(detections)):
            x1, y1, x2, y2 = boxes[k]
            track_id = int(detections.track_ids[k])
            colour = self._colour(int(detections.class_ids[k]), track_id)
            if coasted is not None and coasted[k]:
                _corners(out, (x1, y1, x2 - 1, y2 - 1), colour, thick)
            else:
                cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colour, thick, cv2.LINE_AA)
            if self.config.labels:
                text = f"{names[k]} {detections.scores[k]:.2f}"
                if track_id >= 0:
                    text = f"#{track_id} {text}"
                (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
                top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1
                cv2.rectangle(out, (x1, top), (x1 + tw + 2, top + th + base + 2), colour, -1)
                cv2.putText(out, text, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font,
                            (255, 255, 255), 1, cv2.LINE_AA)
        if overlay and self.config.overlay:
            (tw, th), base = cv2.getTextSize(overlay, cv2.FONT_HERSHEY_SIMPLEX, font * 1.2, 1)
            cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
            cv2.putText(out, overlay, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, font * 1.2,
                        (255, 255, 255), 1, cv2.LINE_AA)
        return out

    def _update_trails(self, detections: Detections) -> None:
        if not self.config.trails:
            return
        live = set()
        for k, track_id in enumerate(detections.track_ids.tolist()):
            if track_id < 0:
                continue
            x1, y1, x2, y2 = detections.boxes[k]
            trail = self._trails.setdefault(track_id, deque(maxlen=self.config.trails))
            trail.append((int((x1 + x2) / 2), int(y2)))  # bottom centre: where it stands
            live.add(track_id)
        for track_id in list(self._trails):  # trails of tracks not seen now fade out
            if track_id not in live:
                trail = self._trails[track_id]
                trail.popleft()
                if not trail:
                    del self._trails[track_id]


def _corners(image: np.ndarray, box: tuple[int, int, int, int], colour: tuple[int, int, int],
             thick: int) -> None:
    """Only the corners of ``box`` (inclusive ``x1, y1, x2, y2``): where the tracker predicts
    an object it does not see this frame (a coasted box), so it reads as a guess."""
    x1, y1, x2, y2 = box
    dx, dy = max(2, (x2 - x1) // 4), max(2, (y2 - y1) // 4)
    for x, y, sx, sy in ((x1, y1, 1, 1), (x2, y1, -1, 1), (x1, y2, 1, -1), (x2, y2, -1, -1)):
        cv2.line(image, (x, y), (x + sx * dx, y), colour, thick, cv2.LINE_AA)
        cv2.line(image, (x, y), (x, y + sy * dy), colour, thick, cv2.LINE_AA)
