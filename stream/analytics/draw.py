"""Lines with their counts and areas with their occupancy, drawn on the annotated frame."""

from __future__ import annotations

import cv2
import numpy as np

from detstream.stream.analytics.rules import Rules

#: Colours (BGR): lines, their "in" side's arrow, areas.
LINE_COLOUR = (255, 255, 255)
IN_COLOUR = (80, 200, 60)
AREA_COLOUR = (255, 160, 40)


#: Where along a line its label and arrow may go (share of the way from its first point),
#: tried in order until the label overlaps no other rule's.
LINE_SPOTS = (0.5, 0.3, 0.7, 0.15, 0.85)


def _box(image: np.ndarray, text: str, at: tuple[float, float], font: float
         ) -> tuple[int, int, int, int]:
    """The filled box of ``text`` whose top-left corner is ``at``, kept inside the image:
    ``(x1, y1, x2, y2)``."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
    h, w = image.shape[:2]
    x = int(min(max(0, at[0]), max(0, w - tw - 6)))
    y = int(min(max(0, at[1]), max(0, h - th - base - 6)))
    return x, y, x + tw + 6, y + th + base + 6


def _overlaps(box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]]) -> bool:
    return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
               for b in taken)


def _label(image: np.ndarray, text: str, box: tuple[int, int, int, int], font: float,
           colour: tuple[int, int, int]) -> None:
    """White (or black on a light ``colour``) text on a filled ``box`` of ``colour``."""
    x, y, x2, y2 = box
    (_, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
    cv2.rectangle(image, (x, y), (x2, y2), colour, -1)
    cv2.putText(image, text, (x + 3, y + th + 3), cv2.FONT_HERSHEY_SIMPLEX, font,
                (255, 255, 255) if sum(colour) < 600 else (0, 0, 0), 1, cv2.LINE_AA)


def draw_rules(image: np.ndarray, rules: Rules) -> np.ndarray:
    """Each line (with an arrow to its ``in`` side and ``name in N out M``) and each area
    (outlined, ``name N inside``) on ``image``, in place; returns it. Labels keep clear of
    each other: a line's moves along it (its arrow with it), an area's from its centre to
    its corners, to the first place no earlier label covers."""
    shown = rules.tallies()  # read under the rules' lock: tracking updates them meanwhile
    h = image.shape[0]
    thick = max(1, round(h / 360))
    font = max(0.4, h / 1200)
    taken: list[tuple[int, int, int, int]] = []
    for line in rules.lines:
        a = tuple(int(round(v)) for v in line.start)
        b = tuple(int(round(v)) for v in line.end)
        cv2.line(image, a, b, LINE_COLOUR, thick + 1, cv2.LINE_AA)
    for line in rules.lines:
        direction = line.end - line.start
        right = np.array([-direction[1], direction[0]]) / float(np.hypot(*direction))
        crossed_in, crossed_out = shown[line.spec.name]
        text = f"{line.spec.name}  in {crossed_in}  out {crossed_out}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        # on the "out" side, clear of the arrow: its centre half its size away from the line
        away = 0.5 * abs(right[0]) * tw + 0.5 * abs(right[1]) * th + 8
        spots = []
        for share in LINE_SPOTS:
            point = line.start + share * direction
            centre = point - right * away
            spots.append((point, _box(image, text, (centre[0] - tw / 2, centre[1] - th / 2),
                                      font)))
        point, box = next(((p, b) for p, b in spots if not _overlaps(b, taken)), spots[0])
        tip = point + right * 20 * thick
        cv2.arrowedLine(image, tuple(int(v) for v in point), tuple(int(v) for v in tip),
                        IN_COLOUR, thick + 1, cv2.LINE_AA, tipLength=0.35)
        _label(image, text, box, font, (40, 40, 40))
        ends = np.stack([point, tip])
        pad = 4 * thick  # the arrow's head spreads beside its shaft
        taken += [box, (int(ends[:, 0].min()) - pad, int(ends[:, 1].min()) - pad,
                        int(ends[:, 0].max()) + pad, int(ends[:, 1].max()) + pad)]
    for area in rules.areas:
        corners = np.round(area.zone.points).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [corners], True, AREA_COLOUR, thick, cv2.LINE_AA)
        (inside,) = shown[area.spec.name]
        text = f"{area.spec.name}  {inside} inside"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        centre = area.zone.points.mean(axis=0)  # clear of the corner overlay and the edges
        spots = [(centre[0] - tw / 2, centre[1])]
        for corner in area.zone.points:  # then just inside each corner, towards the centre
            toward = centre - corner
            spots.append((corner[0] + (6 if toward[0] > 0 else -tw - 12),
                          corner[1] + (6 if toward[1] > 0 else -th - 12)))
        boxes = [_box(image, text, spot, font) for spot in spots]
        box = next((b for b in boxes if not _overlaps(b, taken)), boxes[0])
        _label(image, text, box, font, AREA_COLOUR)
        taken.append(box)
    return image
