"""Shape outlines of the target classes and the distractors, and their rasterisation.

A shape is a list of polygons in unit coordinates (extent about [-0.5, 0.5]); each polygon
either adds to the mask or cuts a hole in it (rings, crescents). Rasterisation is exact and
hard-edged (no anti-aliasing) so that ground-truth boxes are the true pixel extent of the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision: 1/16 px
_SUBPIXEL = 1 << _SUBPIXEL_BITS


def _ellipse(n: int = 48, cx: float = 0.0, cy: float = 0.0, r: float = 0.5) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


@dataclass(frozen=True)
class Shape:
    """One shape kind with its per-instance parameters.

    Attributes:
        kind: shape name (a class name or a distractor name).
        parts: polygons in unit coordinates, each paired with ``True`` (fill) or ``False`` (cut).
    """

    kind: str
    parts: tuple[tuple[np.ndarray, bool], ...]


def make_shape(kind: str, rng: np.random.Generator) -> tuple[Shape, float]:
    """Build a shape of ``kind`` with random parameters.

    Returns:
        ``(shape, aspect)``: the shape and the width/height ratio its instances should keep.
    """
    if kind == "circle":
        return Shape(kind, ((_ellipse(), True),)), float(rng.uniform(0.85, 1.18))
    if kind == "triangle":
        apex = float(rng.uniform(-0.3, 0.3))
        pts = np.array([[apex, -0.5], [0.5, 0.5], [-0.5, 0.5]])
        return Shape(kind, ((pts, True),)), float(rng.uniform(0.8, 1.25))
    if kind == "square":
        pts = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
        return Shape(kind, ((pts, True),)), float(rng.uniform(0.8, 1.25))
    if kind == "star":
        inner = float(rng.uniform(0.36, 0.5))
        t = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 0.5, 0.5 * inner)
        pts = np.stack([r * np.cos(t), r * np.sin(t) + 0.05], axis=1)
        return Shape(kind, ((pts, True),)), float(rng.uniform(0.9, 1.1))
    if kind == "ring":
        hole = float(rng.uniform(0.45, 0.68))
        return Shape(kind, ((_ellipse(), True), (_ellipse(r=0.5 * hole), False))), float(
            rng.uniform(0.85, 1.18)
        )
    if kind == "crescent":
        shift = float(rng.uniform(0.22, 0.38))
        cut = _ellipse(cx=shift, cy=-0.08, r=0.45)
        return Shape(kind, ((_ellipse(), True), (cut, False))), float(rng.uniform(0.85, 1.18))
    if kind == "bar":
        pts = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
        return Shape(kind, ((pts, True),)), float(rng.uniform(3.0, 6.0))
    if kind == "chevron":
        k = float(rng.uniform(0.25, 0.4))  # arm thickness
        pts = np.array([[-0.5, -0.5], [0.0, 0.5 - 2 * k], [0.5, -0.5], [0.5, -0.5 + k],
                        [0.0, 0.5], [-0.5, -0.5 + k]])
        return Shape(kind, ((pts, True),)), float(rng.uniform(0.9, 1.4))
    raise ValueError(f"unknown shape kind {kind!r}")


@dataclass(frozen=True)
class Raster:
    """A rasterised shape placed in frame coordinates.

    Attributes:
        mask: uint8 [h, w], 255 inside the shape, 0 outside.
        x0, y0: frame position of the mask's top-left pixel.
        area: number of pixels inside the shape (also those that fall outside the frame).
    The mask is cropped tight, so its extent is the object's box: ``x0, y0, x0 + w, y0 + h``.
    """

    mask: np.ndarray
    x0: int
    y0: int
    area: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Tight ``xyxy`` box in frame pixels (exclusive right/bottom edge)."""
        h, w = self.mask.shape
        return self.x0, self.y0, self.x0 + w, self.y0 + h


def rasterize(shape: Shape, cx: float, cy: float, width: float, height: float,
              angle: float) -> Raster | None:
    """Fill ``shape`` scaled to ``width`` x ``height`` px, rotated by ``angle`` (radians) about its
    centre ``(cx, cy)`` in frame pixels. Returns None when no pixel is covered."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c * width, -s * height], [s * width, c * height]])
    placed = [(pts @ rot.T + (cx, cy), fill) for pts, fill in shape.parts]
    allpts = np.concatenate([p for p, _ in placed])
    x0, y0 = np.floor(allpts.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(allpts.max(axis=0)).astype(int) + 2
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for pts, fill in placed:
        # Pixel centres sit at integer coordinates in cv2; shift by -0.5 so that a polygon edge at
        # x = 10.0 covers the pixel whose area spans [10, 11).
        local = np.round((pts - (x0 + 0.5, y0 + 0.5)) * _SUBPIXEL).astype(np.int32)
        cv2.fillPoly(mask, [local], 255 if fill else 0, cv2.LINE_8, _SUBPIXEL_BITS)
    bx, by, bw, bh = cv2.boundingRect(mask)
    if bw == 0 or bh == 0:
        return None
    mask = mask[by : by + bh, bx : bx + bw]
    return Raster(mask, int(x0 + bx), int(y0 + by), int(cv2.countNonZero(mask)))
