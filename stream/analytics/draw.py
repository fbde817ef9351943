"""Lines with their counts and areas with their occupancy, drawn on the annotated frame."""

from __future__ import annotations

import cv2
import numpy as np

from detstream.stream.analytics.rules import Rules

#: Colours (BGR): lines, their "in" side's arrow, areas.
LINE_COLOUR = (255, 255, 255)
IN_COLOUR = (80, 200, 60)
AREA_COLOUR = (255, 160, 40)


def _label(image: np.ndarray, text: str, at: tuple[int, int], font: float,
           colour: tuple[int, int, int]) -> None:
    """White text on a filled box of ``colour`` whose top-left corner is ``at`` (kept inside
    the image)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
    h, w = image.shape[:2]
    x = int(min(max(0, at[0]), max(0, w - tw - 6)))
    y = int(min(max(0, at[1]), max(0, h - th - base - 6)))
    cv2.rectangle(image, (x, y), (x + tw + 6, y + th + base + 6), colour, -1)
    cv2.putText(image, text, (x + 3, y + th + 3), cv2.FONT_HERSHEY_SIMPLEX, font,
                (255, 255, 255) if sum(colour) < 600 else (0, 0, 0), 1, cv2.LINE_AA)


def draw_rules(image: np.ndarray, rules: Rules) -> np.ndarray:
    """Each line (with an arrow to its ``in`` side and ``name in N out M``) and each area
    (outlined, ``name N inside``) on ``image``, in place; returns it."""
    shown = rules.tallies()  # read under the rules' lock: tracking updates them meanwhile
    h = image.shape[0]
    thick = max(1, round(h / 360))
    font = max(0.4, h / 1200)
    for line in rules.lines:
        a = tuple(int(round(v)) for v in line.start)
        b = tuple(int(round(v)) for v in line.end)
        cv2.line(image, a, b, LINE_COLOUR, thick + 1, cv2.LINE_AA)
        middle = (line.start + line.end) / 2.0
        direction = line.end - line.start
        right = np.array([-direction[1], direction[0]]) / float(np.hypot(*direction))
        tip = middle + right * 20 * thick
        cv2.arrowedLine(image, tuple(int(v) for v in middle), tuple(int(v) for v in tip),
                        IN_COLOUR, thick + 1, cv2.LINE_AA, tipLength=0.35)
        crossed_in, crossed_out = shown[line.spec.name]
        text = f"{line.spec.name}  in {crossed_in}  out {crossed_out}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        # on the "out" side, clear of the arrow: its centre half its size away from the line
        centre = middle - right * (0.5 * abs(right[0]) * tw + 0.5 * abs(right[1]) * th + 8)
        _label(image, text, (int(centre[0] - tw / 2), int(centre[1] - th / 2)), font,
               (40, 40, 40))
    for area in rules.areas:
        corners = np.round(area.zone.points).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [corners], True, AREA_COLOUR, thick, cv2.LINE_AA)
        (inside,) = shown[area.spec.name]
        text = f"{area.spec.name}  {inside} inside"
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        centre = area.zone.points.mean(axis=0)  # clear of the corner overlay and the edges
        _label(image, text, (int(centre[0]) - tw // 2, int(centre[1])), font, AREA_COLOUR)
    return image
