"""Turn a :class:`~detstream.engines.data.synthetic.world.FrameState` into pixels and ground truth.

The background (a cluttered, unevenly lit canvas larger than the view when the camera pans)
and the sensor-noise field are made once per scene; each frame is then a crop of the canvas,
the bodies drawn far to near (motion-blurred along their on-screen velocity), the foreground
posts, and one fused pass of lighting gain plus noise. Ground truth comes from the same hard
masks that paint the pixels, so boxes and visible fractions are exact.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import NamedTuple

import cv2
import numpy as np

from detstream.engines.data.synthetic.config import CLASS_NAMES, DISTRACTOR_NAMES, SceneConfig
from detstream.engines.data.synthetic.shapes import Raster, make_shape, rasterize
from detstream.engines.data.synthetic.textures import make_texture, random_colour, shade
from detstream.engines.data.synthetic.world import FrameState, World
from detstream.engines.spec import Detections

_NOISE_PAD = 32  # the noise field is larger than a frame so each frame can take another offset
_SHUTTER = 0.6  # fraction of a frame interval the virtual shutter stays open
_MAX_BLUR = 31  # px: longest motion-blur streak


class RenderedFrame(NamedTuple):
    """One rendered frame.

    Attributes:
        image: uint8 [H, W, 3] BGR.
        truth: ground truth, one row per target in view (fully hidden ones included, with
            ``data["visibility"] == 0``), sorted by track id; scores are 1.
        instances: int64 [H, W] track id of the target seen at each pixel (0 for none), only
            when asked for.
    """

    image: np.ndarray
    truth: Detections
    instances: np.ndarray | None


def _motion_kernel(dx: float, dy: float) -> np.ndarray:
    """A normalised line kernel of length ``hypot(dx, dy)`` px along ``(dx, dy)``."""
    length = min(math.hypot(dx, dy), float(_MAX_BLUR))
    size = int(math.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    ux, uy = dx / max(math.hypot(dx, dy), 1e-6), dy / max(math.hypot(dx, dy), 1e-6)
    half = 0.5 * length
    p0 = (int(round((c - ux * half) * 16)), int(round((c - uy * half) * 16)))
    p1 = (int(round((c + ux * half) * 16)), int(round((c + uy * half) * 16)))
    cv2.line(kernel, p0, p1, 1.0, 1, cv2.LINE_AA, 4)
    total = float(kernel.sum())
    if total <= 0:
        kernel[c, c] = 1.0
        total = 1.0
    return kernel / total


def _build_background(cfg: SceneConfig, width: int, height: int,
                      rng: np.random.Generator) -> np.ndarray:
    """A cluttered, unevenly lit canvas: uint8 [height, width, 3]."""
    # Smooth colour field between two muted colours.
    cells = (int(rng.integers(3, 8)), int(rng.integers(3, 8)))
    weight = cv2.resize(rng.random(cells, dtype=np.float32), (width, height),
                        interpolation=cv2.INTER_CUBIC).clip(0, 1)[..., None]
    a, b = random_colour(rng, muted=True), random_colour(rng, muted=True)
    canvas = (a * (1 - weight) + b * weight).astype(np.uint8)
    # Large textured regions (floors, walls, patches).
    for _ in range(int(rng.integers(2, 7))):
        rw = int(rng.uniform(0.15, 0.6) * width)
        rh = int(rng.uniform(0.15, 0.6) * height)
        x0, y0 = int(rng.integers(0, width - rw)), int(rng.integers(0, height - rh))
        tiled = make_texture(rng, size=(rh, rw), muted=True)
        region = canvas[y0:y0 + rh, x0:x0 + rw]
        alpha = float(rng.uniform(0.4, 0.9))
        cv2.addWeighted(tiled, alpha, region, 1 - alpha, 0.0, dst=region)
    # Lines and static distractor shapes: clutter that is never a target.
    area_ratio = (width * height) / float(cfg.width * cfg.height)
    for _ in range(int(rng.integers(0, 8) * area_ratio)):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(float(c) for c in random_colour(rng))
        cv2.line(canvas, p0, p1, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    if cfg.distractors:
        for _ in range(int(rng.integers(4, 16) * area_ratio)):
            kind = DISTRACTOR_NAMES[int(rng.integers(len(DISTRACTOR_NAMES)))]
            shape, aspect = make_shape(kind, rng)
            size = math.exp(rng.uniform(math.log(cfg.min_size), math.log(cfg.max_size)))
            w, h = (size, size / aspect) if aspect >= 1 else (size * aspect, size)
            r = rasterize(shape, rng.uniform(0, width), rng.uniform(0, height), w, h,
                          rng.uniform(-np.pi, np.pi))
            if r is not None:
                tex = shade(make_texture(rng, size=64), rng)
                _paste_hard(canvas, r, cv2.resize(tex, r.mask.shape[::-1]))
    # Uneven illumination (vignette plus a broad gradient), baked into the canvas.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    falloff = ((xx - cx) / width) ** 2 + ((yy - cy) / height) ** 2
    illum = 1.1 - rng.uniform(0.2, 0.6) * falloff
    return (canvas * illum[..., None]).clip(0, 255).astype(np.uint8)


def _clip(r: Raster, width: int, height: int) -> tuple[int, int, int, int] | None:
    h, w = r.mask.shape
    x0, y0 = max(r.x0, 0), max(r.y0, 0)
    x1, y1 = min(r.x0 + w, width), min(r.y0 + h, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, y0, x1, y1


def _paste_hard(image: np.ndarray, r: Raster, colour: np.ndarray) -> None:
    """Copy ``colour`` (uint8 [h, w, 3], the raster's size) into ``image`` where the mask is set."""
    rect = _clip(r, image.shape[1], image.shape[0])
    if rect is None:
        return
    x0, y0, x1, y1 = rect
    sx, sy = x0 - r.x0, y0 - r.y0
    m = r.mask[sy:sy + y1 - y0, sx:sx + x1 - x0]
    src = colour[sy:sy + y1 - y0, sx:sx + x1 - x0]
    np.copyto(image[y0:y1, x0:x1], src, where=m[..., None] > 0)


def _paste_blurred(image: np.ndarray, r: Raster, colour: np.ndarray, kernel: np.ndarray) -> None:
    """Composite ``colour`` through the raster's mask smeared by ``kernel`` (motion blur)."""
    pad = kernel.shape[0] // 2 + 1
    alpha = np.pad(r.mask.astype(np.float32) * (1.0 / 255.0), pad)
    premult = np.pad(colour.astype(np.float32) * alpha[pad:-pad, pad:-pad, None],
                     ((pad, pad), (pad, pad), (0, 0)))
    alpha = cv2.filter2D(alpha, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    premult = cv2.filter2D(premult, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    gx0, gy0 = r.x0 - pad, r.y0 - pad
    gh, gw = alpha.shape
    x0, y0 = max(gx0, 0), max(gy0, 0)
    x1, y1 = min(gx0 + gw, image.shape[1]), min(gy0 + gh, image.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - gy0:y1 - gy0, x0 - gx0:x1 - gx0, None]
    p = premult[y0 - gy0:y1 - gy0, x0 - gx0:x1 - gx0]
    roi = image[y0:y1, x0:x1]
    roi[:] = (p + roi.astype(np.float32) * (1.0 - a)).clip(0, 255).astype(np.uint8)


class Renderer:
    """Renders frames of one world. Pure: the same state always gives the same pixels."""

    def __init__(self, world: World) -> None:
        cfg = world.config
        self.config = cfg
        self.posts = world.posts
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xBAC6]))
        cw, ch = world.canvas_size
        self.background = _build_background(cfg, cw, ch, rng)
        self.noise: np.ndarray | None = None
        if cfg.noise:
            sigma = float(rng.uniform(1.5, 7.0))
            shape = (cfg.height + _NOISE_PAD, cfg.width + _NOISE_PAD, 3)
            noise = rng.standard_normal(shape, dtype=np.float32) * sigma + 128.0
            self.noise = noise.clip(0, 255).astype(np.uint8)

    def render(self, state: FrameState, exclude: Collection[int] = (),
               instances: bool = False) -> RenderedFrame:
        """Render one frame.

        Args:
            state: the world at this frame.
            exclude: track ids of targets to leave out (for tests and masks).
            instances: also return the per-pixel track id map.
        """
        cfg = self.config
        width, height = cfg.width, cfg.height
        cam_x, cam_y = state.cam_x, state.cam_y
        image = self.background[cam_y:cam_y + height, cam_x:cam_x + width].copy()
        labels = np.zeros((height, width), np.int16)  # 1 + index into `targets`, 0 for none
        targets: list[tuple[int, int, Raster, tuple[int, int, int, int]]] = []
        dt = 1.0 / cfg.fps
        for body in state.bodies:
            if body.uid in exclude:
                continue
            r = rasterize(body.shape, body.cx - cam_x, body.cy - cam_y, body.width,
                          body.height, body.angle)
            if r is None:
                continue
            rect = _clip(r, width, height)
            if rect is None:
                continue
            colour = cv2.resize(body.texture, r.mask.shape[::-1], interpolation=cv2.INTER_LINEAR)
            streak_x = (body.vx - state.cam_vx) * dt * _SHUTTER
            streak_y = (body.vy - state.cam_vy) * dt * _SHUTTER
            if cfg.motion_blur and math.hypot(streak_x, streak_y) >= 1.5:
                _paste_blurred(image, r, colour, _motion_kernel(streak_x, streak_y))
            else:
                _paste_hard(image, r, colour)
            x0, y0, x1, y1 = rect
            m = r.mask[y0 - r.y0:y1 - r.y0, x0 - r.x0:x1 - r.x0] > 0
            if body.class_id >= 0:
                targets.append((body.uid, body.class_id, r, rect))
                labels[y0:y1, x0:x1][m] = len(targets)
            else:
                labels[y0:y1, x0:x1][m] = 0
        for post in self.posts:
            ph, pw = post.texture.shape[:2]
            px, py = post.x0 - cam_x, post.y0 - cam_y
            x0, y0 = max(px, 0), max(py, 0)
            x1, y1 = min(px + pw, width), min(py + ph, height)
            if x0 < x1 and y0 < y1:
                image[y0:y1, x0:x1] = post.texture[y0 - py:y1 - py, x0 - px:x1 - px]
                labels[y0:y1, x0:x1] = 0
        self._expose(image, state)
        truth = self._truth(targets, labels)
        inst = None
        if instances:
            lut = np.zeros(len(targets) + 1, np.int64)
            lut[1:] = [uid for uid, *_ in targets]
            inst = lut[labels]
        return RenderedFrame(image, truth, inst)

    def _expose(self, image: np.ndarray, state: FrameState) -> None:
        """Lighting gain and sensor noise in one pass, in place."""
        if self.noise is not None:
            noise = self.noise[state.noise_dy:state.noise_dy + image.shape[0],
                               state.noise_dx:state.noise_dx + image.shape[1]]
            cv2.addWeighted(image, state.gain, noise, 1.0, -128.0, dst=image)
        elif state.gain != 1.0:
            cv2.convertScaleAbs(image, dst=image, alpha=state.gain)

    def _truth(self, targets: list[tuple[int, int, Raster, tuple[int, int, int, int]]],
               labels: np.ndarray) -> Detections:
        if not targets:
            return Detections.empty(CLASS_NAMES).replace(data={"visibility": np.zeros(0,
                                                                                      np.float32)})
        targets = sorted(enumerate(targets, start=1), key=lambda item: item[1][0])
        boxes = np.empty((len(targets), 4), np.float32)
        vis = np.empty(len(targets), np.float32)
        uids = np.empty(len(targets), np.int64)
        classes = np.empty(len(targets), np.int32)
        for row, (label, (uid, class_id, r, rect)) in enumerate(targets):
            x0, y0, x1, y1 = rect
            boxes[row] = rect
            seen = int(np.count_nonzero(labels[y0:y1, x0:x1] == label))
            vis[row] = seen / r.area
            uids[row] = uid
            classes[row] = class_id
        return Detections(boxes=boxes, scores=np.ones(len(targets), np.float32),
                          class_ids=classes, track_ids=uids, class_names=CLASS_NAMES,
                          data={"visibility": vis})
