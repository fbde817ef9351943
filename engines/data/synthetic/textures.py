"""Random textures for objects, distractors and backgrounds.

Every class draws from the same texture families and colours, so appearance never gives the
class away: only shape does.
"""

from __future__ import annotations

import cv2
import numpy as np

TEXTURE_KINDS: tuple[str, ...] = ("flat", "blotches", "stripes", "checker", "gradient", "dots")


def random_colour(rng: np.random.Generator, muted: bool = False) -> np.ndarray:
    """A random BGR colour (float32 [3], 0..255); ``muted`` lowers saturation for backgrounds."""
    hsv = np.array(
        [[[rng.uniform(0, 180), rng.uniform(0, 90 if muted else 255), rng.uniform(40, 250)]]],
        np.float32,
    )
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _pattern(kind: str, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A float32 [height, width] mixing weight in [0, 1] for a two-colour texture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    size = max(height, width)
    if kind == "flat":
        return np.zeros((height, width), np.float32)
    if kind == "blotches":
        cells = int(rng.integers(3, 9))
        small = rng.random((max(2, cells * height // size), max(2, cells * width // size)),
                           dtype=np.float32)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)
    if kind == "stripes":
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(5, 28)
        phase = (xx * np.cos(theta) + yy * np.sin(theta)) * (2 * np.pi / period)
        return (0.5 + 0.5 * np.sin(phase)).astype(np.float32)
    if kind == "checker":
        cell = int(rng.integers(4, 20)) * max(1, size // 128)
        return (((xx // cell) + (yy // cell)) % 2).astype(np.float32)
    if kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        ramp = xx * np.cos(theta) + yy * np.sin(theta)
        ramp -= ramp.min()
        return (ramp / max(float(ramp.max()), 1e-6)).astype(np.float32)
    if kind == "dots":
        out = np.zeros((height, width), np.float32)
        for _ in range(int(rng.integers(6, 30) * max(1, height * width // 128**2))):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            # Radius at most 4 px: dots stay smaller than the smallest target, so a dotted
            # background never contains an unlabelled "circle".
            cv2.circle(out, centre, int(rng.integers(1, 5)), 1.0, -1)
        return out
    raise ValueError(f"unknown texture kind {kind!r}")


def make_texture(rng: np.random.Generator, size: int | tuple[int, int] = 96,
                 muted: bool = False) -> np.ndarray:
    """A random two-colour texture with grain: uint8 [h, w, 3] BGR.

    Args:
        size: side of a square texture, or ``(height, width)``.
    """
    height, width = (size, size) if isinstance(size, int) else size
    kind = TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))]
    weight = _pattern(kind, rng, height, width)[..., None]
    a, b = random_colour(rng, muted), random_colour(rng, muted)
    tex = a * (1.0 - weight) + b * weight
    tex += rng.normal(0.0, rng.uniform(0.0, 10.0), (height, width, 1)).astype(np.float32)
    return tex.clip(0, 255).astype(np.uint8)


def shade(texture: np.ndarray, rng: np.random.Generator, strength: float = 0.35) -> np.ndarray:
    """Light a texture from a random side (a cheap 3-D cue): returns a new uint8 array."""
    h, w = texture.shape[:2]
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xx / w - 0.5) * np.cos(theta) + (yy / h - 0.5) * np.sin(theta))[..., None]
    lit = texture.astype(np.float32) * (1.0 + strength * ramp)
    return lit.clip(0, 255).astype(np.uint8)
