"""The simulated world: moving bodies, a camera and the lighting, advanced one frame at a time.

Everything here is in seconds and pixels, so a scene moves the same at any frame rate. All
randomness comes from the scene's seed; the world never looks at rendered pixels, so ground
truth does not depend on how (or whether) frames are rendered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from detstream.engines.data.synthetic.config import CLASS_NAMES, DISTRACTOR_NAMES, SceneConfig
from detstream.engines.data.synthetic.shapes import Shape, make_shape
from detstream.engines.data.synthetic.textures import make_texture, shade

_VELOCITY_TAU = 0.45  # s: how quickly a body's velocity relaxes toward where it wants to go
_ACCEL_NOISE = 0.45  # x cruise speed, per sqrt(s): random acceleration
_SPIN_MAX = math.radians(35)  # rad/s
_SCALE_RATE_MAX = 0.35  # |d log(size) / dt| in 1/s: approaching or receding
_OFFSCREEN_LIMIT = 2.0  # s out of view before a body is retired
_CROSSING_PROB = 0.3  # chance that a birth is a pair of bodies set to cross each other
_LEAVING_CRUISE = 0.15  # x view diagonal, px/s: the least speed of bodies leaving before a quiet


class BodyView(NamedTuple):
    """What the renderer needs of one body in one frame (a snapshot, never mutated)."""

    uid: int  # track id (1-based) for targets, negative for distractors
    class_id: int  # index into CLASS_NAMES, -1 for distractors
    shape: Shape
    texture: np.ndarray
    cx: float  # centre in world pixels
    cy: float
    width: float
    height: float
    angle: float
    vx: float  # velocity in world pixels per second
    vy: float
    z: float  # draw order: larger is nearer


class FrameState(NamedTuple):
    """The world at one frame: everything needed to render it and to write its ground truth."""

    index: int
    time: float
    cam_x: int  # top-left of the view in world pixels (pan and jitter applied, rounded)
    cam_y: int
    cam_vx: float  # camera velocity, world pixels per second
    cam_vy: float
    bodies: tuple[BodyView, ...]
    gain: float  # global brightness factor
    noise_dx: int  # offset into the renderer's noise field
    noise_dy: int


@dataclass
class _Body:
    uid: int
    class_id: int
    shape: Shape
    aspect: float
    texture: np.ndarray
    x: float
    y: float
    vx: float
    vy: float
    log_size: float
    log_size_rate: float
    angle: float
    spin: float
    z_offset: float
    cruise: float
    goal: tuple[float, float]
    stop_prob: float
    moving: bool = True
    mode_timer: float = 0.0
    life: float = 0.0  # seconds left before heading for an exit
    exiting: bool = False
    offscreen: float = 0.0  # seconds spent fully out of view
    no_stop_until: float = 0.0


@dataclass(frozen=True)
class Post:
    """A static foreground occluder: a textured vertical bar standing in front of everything."""

    x0: int  # world pixels, top-left
    y0: int
    texture: np.ndarray  # uint8 [h, w, 3]; the post's full extent


@dataclass
class World:
    """Seeded simulation of one scene. Call :meth:`step` once per frame."""

    config: SceneConfig
    margin_x: int = field(init=False)
    margin_y: int = field(init=False)
    posts: list[Post] = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        seq = np.random.SeedSequence([cfg.seed, 0x5EED])
        motion_seed, look_seed, light_seed, post_seed = seq.spawn(4)
        self._rng = np.random.default_rng(motion_seed)  # births, motion, camera
        self._look = np.random.default_rng(look_seed)  # shapes and textures of new bodies
        self._light = np.random.default_rng(light_seed)  # lighting and noise offsets
        self.margin_x = int(round(0.15 * cfg.width)) if cfg.camera_motion else 0
        self.margin_y = int(round(0.15 * cfg.height)) if cfg.camera_motion else 0
        self._dt = 1.0 / cfg.fps
        self._index = 0
        self._next_uid = 1
        self._next_distractor = -1
        self._bodies: list[_Body] = []
        self._distractors: list[_Body] = []
        # Camera: float position of the view's top-left corner in world pixels.
        self._cam = np.array([self.margin_x, self.margin_y], np.float64)
        self._cam_v = np.zeros(2)
        self._cam_pan_scale = (float(self._rng.uniform(0.04, 0.12)) * cfg.width  # px/s
                               * cfg.pan_speed)
        self._jitter = float(self._rng.uniform(0.4, 2.0)) * cfg.shake if cfg.camera_motion \
            else 0.0
        # Lighting: a slow drift plus sudden steps toward a new level.
        self._light_period = float(self._light.uniform(4.0, 15.0))
        self._light_phase = float(self._light.uniform(0, 2 * np.pi))
        self._light_amp = float(self._light.uniform(0.03, 0.12))
        self._light_level = 1.0
        self._light_target = 1.0
        self.posts = self._make_posts(np.random.default_rng(post_seed)) if cfg.occluders else []
        # Waves (``quiet`` > 0): "arriving" for `wave` s, "leaving" until the view is empty,
        # "quiet" for `quiet` s. Without quiet spells the scene is always arriving.
        self._phase = "arriving"
        self._phase_end = cfg.wave
        self._populate()

    # ----------------------------------------------------------------- public
    @property
    def view_size(self) -> tuple[int, int]:
        return self.config.width, self.config.height

    @property
    def canvas_size(self) -> tuple[int, int]:
        """Width and height of the world the camera may look at."""
        return self.config.width + 2 * self.margin_x, self.config.height + 2 * self.margin_y

    def step(self) -> FrameState:
        """Return the state of the current frame, then advance the world by one frame."""
        state = self._snapshot()
        self._advance()
        return state

    # ----------------------------------------------------------------- set-up
    def _make_posts(self, rng: np.random.Generator) -> list[Post]:
        cfg = self.config
        cw, ch = self.canvas_size
        count = int(rng.choice([0, 1, 1, 2, 2]))
        posts = []
        for _ in range(count):
            w = max(1, int(rng.uniform(0.025, 0.055) * cfg.width * cfg.occluder_width))
            h = int(rng.uniform(0.45, 1.0) * ch)
            x0 = int(rng.uniform(0.1, 0.85) * cw)
            y0 = ch - h if rng.random() < 0.6 else 0  # standing on the ground, or hanging
            tex = shade(make_texture(rng, size=(h, max(w, 8)), muted=True), rng, 0.6)
            posts.append(Post(x0, y0, tex[:, :w]))
        return posts

    def _populate(self) -> None:
        cfg = self.config
        rng = self._rng
        for _ in range(int(rng.poisson(cfg.objects)) if cfg.objects else 0):
            self._bodies.append(self._new_body(target=True, inside=True))
        if cfg.distractors:
            for _ in range(max(1, cfg.objects // 4)):
                self._distractors.append(self._new_body(target=False, inside=True))

    def _view_rect(self) -> tuple[float, float, float, float]:
        x0, y0 = self._cam
        return x0, y0, x0 + self.config.width, y0 + self.config.height

    def _random_point_in_view(self, pad: float) -> tuple[float, float]:
        x0, y0, x1, y1 = self._view_rect()
        rng = self._rng
        return float(rng.uniform(x0 + pad, x1 - pad)), float(rng.uniform(y0 + pad, y1 - pad))

    def _edge_point(self, edge: int, along: float, outside: float) -> tuple[float, float]:
        """A point ``outside`` px beyond view edge ``edge`` (0 left, 1 right, 2 top, 3 bottom)."""
        x0, y0, x1, y1 = self._view_rect()
        if edge == 0:
            return x0 - outside, y0 + along * (y1 - y0)
        if edge == 1:
            return x1 + outside, y0 + along * (y1 - y0)
        if edge == 2:
            return x0 + along * (x1 - x0), y0 - outside
        return x0 + along * (x1 - x0), y1 + outside

    def _new_body(self, target: bool, inside: bool, at: tuple[float, float] | None = None,
                  goal: tuple[float, float] | None = None, cruise: float | None = None,
                  log_size: float | None = None) -> _Body:
        cfg, rng, look = self.config, self._rng, self._look
        if target:
            class_id = int(look.integers(len(CLASS_NAMES)))
            shape, aspect = make_shape(CLASS_NAMES[class_id], look)
            uid = self._next_uid
            self._next_uid += 1
        else:
            class_id = -1
            shape, aspect = make_shape(DISTRACTOR_NAMES[int(look.integers(len(DISTRACTOR_NAMES)))],
                                       look)
            uid = self._next_distractor
            self._next_distractor -= 1
        texture = shade(make_texture(look, size=64), look)
        lo, hi = math.log(cfg.min_size), math.log(cfg.max_size)
        if log_size is None:
            # Favour small and mid sizes, as in real footage, but cover the whole range.
            log_size = lo + (hi - lo) * float(rng.beta(1.3, 2.2))
        size = math.exp(log_size)
        diag = math.hypot(cfg.width, cfg.height)
        if cruise is None:
            cruise = float(rng.uniform(0.04, 0.3)) * diag  # px/s: 3 to 25 s to cross the view
        if at is None:
            if inside:
                at = self._random_point_in_view(pad=0.5 * size)
            else:
                edge = int(rng.integers(4))
                at = self._edge_point(edge, float(rng.uniform(0.1, 0.9)), size)
        if goal is None:
            goal = self._random_point_in_view(pad=size)
        heading = math.atan2(goal[1] - at[1], goal[0] - at[0])
        return _Body(
            uid=uid,
            class_id=class_id,
            shape=shape,
            aspect=aspect,
            texture=texture,
            x=at[0],
            y=at[1],
            vx=cruise * math.cos(heading),
            vy=cruise * math.sin(heading),
            log_size=log_size,
            log_size_rate=float(rng.uniform(-_SCALE_RATE_MAX, _SCALE_RATE_MAX))
            if rng.random() < 0.5 else 0.0,
            angle=float(rng.uniform(-np.pi, np.pi)) if shape.kind != "square"
            else float(rng.normal(0.0, 0.2)),
            spin=float(rng.uniform(-_SPIN_MAX, _SPIN_MAX)) if rng.random() < 0.4 else 0.0,
            z_offset=float(rng.normal(0.0, 0.3)),
            cruise=cruise,
            goal=goal,
            stop_prob=min(1.0, float(rng.uniform(0.0, 0.5)) * cfg.stops),
            mode_timer=float(rng.uniform(1.0, 4.0)),
            life=float(rng.uniform(3.0, 15.0)),
        )

    def _spawn_crossing_pair(self) -> None:
        """Two bodies entering from opposite edges, timed to meet near a point in view."""
        rng, cfg = self._rng, self.config
        meet = self._random_point_in_view(pad=0.25 * min(cfg.width, cfg.height))
        travel = float(rng.uniform(1.5, 4.0))  # s until they meet
        horizontal = rng.random() < 0.6
        x0, y0, x1, y1 = self._view_rect()
        for side in (0, 1):
            edge, far_edge = (side, 1 - side) if horizontal else (2 + side, 3 - side)
            frac = (meet[1] - y0) / (y1 - y0) if horizontal else (meet[0] - x0) / (x1 - x0)
            frac += float(rng.uniform(-0.05, 0.05))
            start = self._edge_point(edge, frac, cfg.min_size)
            far = self._edge_point(far_edge, frac, 4 * cfg.max_size)
            distance = math.hypot(meet[0] - start[0], meet[1] - start[1])
            body = self._new_body(target=True, inside=False, at=start, goal=far,
                                  cruise=distance / travel)
            body.no_stop_until = self._index * self._dt + travel + 0.5
            body.life = 2.0 * travel + 1.0  # long enough to reach the far side
            self._bodies.append(body)

    # ----------------------------------------------------------------- dynamics
    def _steer(self, body: _Body, now: float) -> None:
        rng, dt = self._rng, self._dt
        body.mode_timer -= dt
        if body.mode_timer <= 0:
            if body.moving and now >= body.no_stop_until and rng.random() < body.stop_prob:
                body.moving = False
                body.mode_timer = float(rng.uniform(0.4, 2.0))
            else:
                body.moving = True
                body.mode_timer = float(rng.uniform(1.0, 4.0))
        body.life -= dt
        size = math.exp(body.log_size)
        if body.life <= 0 and not body.exiting:
            body.exiting = True
            edge = int(rng.integers(4))
            body.goal = self._edge_point(edge, float(rng.uniform(0.0, 1.0)), 4 * size + 50)
        dx, dy = body.goal[0] - body.x, body.goal[1] - body.y
        dist = math.hypot(dx, dy)
        if dist < max(0.5 * size, 10.0) and not body.exiting:
            body.goal = self._random_point_in_view(pad=size)
            dx, dy = body.goal[0] - body.x, body.goal[1] - body.y
            dist = math.hypot(dx, dy)
        want = body.cruise if body.moving else 0.0
        if dist > 1e-6:
            want_vx, want_vy = want * dx / dist, want * dy / dist
        else:
            want_vx = want_vy = 0.0
        relax = 1.0 - math.exp(-dt / _VELOCITY_TAU)
        kick = _ACCEL_NOISE * body.cruise * math.sqrt(dt) if body.moving else 0.0
        body.vx += (want_vx - body.vx) * relax + kick * float(rng.standard_normal())
        body.vy += (want_vy - body.vy) * relax + kick * float(rng.standard_normal())
        body.x += body.vx * dt
        body.y += body.vy * dt
        body.angle += body.spin * dt
        # Approach or recede: size follows a rate that wanders and reflects at the size limits.
        if body.log_size_rate != 0.0:
            body.log_size_rate += 0.1 * math.sqrt(dt) * float(rng.standard_normal())
            body.log_size_rate = max(-_SCALE_RATE_MAX, min(_SCALE_RATE_MAX, body.log_size_rate))
        body.log_size += body.log_size_rate * dt
        lo, hi = math.log(self.config.min_size), math.log(self.config.max_size)
        if body.log_size < lo or body.log_size > hi:
            body.log_size = min(hi, max(lo, body.log_size))
            body.log_size_rate = -body.log_size_rate

    def _in_view(self, body: _Body) -> bool:
        x0, y0, x1, y1 = self._view_rect()
        r = 0.75 * math.exp(body.log_size) * max(1.0, body.aspect)
        return x0 - r < body.x < x1 + r and y0 - r < body.y < y1 + r

    def _retire(self, bodies: list[_Body]) -> list[_Body]:
        kept = []
        for body in bodies:
            body.offscreen = 0.0 if self._in_view(body) else body.offscreen + self._dt
            if body.offscreen == 0.0 or (body.offscreen < _OFFSCREEN_LIMIT and not body.exiting):
                kept.append(body)
        return kept

    def _move_camera(self) -> None:
        if not self.config.camera_motion:
            return
        rng, dt = self._rng, self._dt
        # Ornstein-Uhlenbeck pan velocity; bounce off the edges of the world.
        tau = 2.0
        self._cam_v += -self._cam_v * dt / tau + self._cam_pan_scale * math.sqrt(
            2 * dt / tau) * rng.standard_normal(2)
        self._cam += self._cam_v * dt
        limits = (2 * self.margin_x, 2 * self.margin_y)
        for axis in (0, 1):
            if self._cam[axis] < 0 or self._cam[axis] > limits[axis]:
                self._cam[axis] = min(limits[axis], max(0.0, self._cam[axis]))
                self._cam_v[axis] = -0.5 * self._cam_v[axis]

    def _move_light(self, now: float) -> float:
        if not self.config.lighting:
            return 1.0
        light = self._light
        if light.random() < 0.12 * self._dt:  # a sudden change about every 8 s
            self._light_target = float(light.uniform(0.6, 1.3))
        self._light_level += (self._light_target - self._light_level) * (
            1.0 - math.exp(-self._dt / 0.15))
        drift = self._light_amp * math.sin(2 * np.pi * now / self._light_period + self._light_phase)
        return max(0.4, min(1.5, self._light_level * (1.0 + drift)))

    def _next_phase(self, now: float) -> None:
        """Waves and quiet spells (only with ``quiet`` > 0; no random draws of their own)."""
        cfg = self.config
        if self._phase == "arriving" and now >= self._phase_end:
            self._phase = "leaving"
            cruise = _LEAVING_CRUISE * math.hypot(cfg.width, cfg.height)
            for body in self._bodies + self._distractors:
                # Head for an exit at once, without stopping, at a walking pace at least.
                body.life = min(body.life, 0.0)
                body.stop_prob = 0.0
                body.moving = True
                body.cruise = max(body.cruise, cruise)
        elif self._phase == "leaving" and not self._bodies and not self._distractors:
            self._phase = "quiet"
            self._phase_end = now + cfg.quiet
        elif self._phase == "quiet" and now >= self._phase_end:
            self._phase = "arriving"
            self._phase_end = now + cfg.wave

    def _births(self) -> None:
        """New targets and moving distractors, entering through the edges."""
        # Births keep about `objects` targets in view: a Poisson process that speeds up with the
        # shortfall.
        missing = self.config.objects - len(self._bodies)
        if missing > 0 and self._rng.random() < 1.0 - math.exp(-0.6 * missing * self._dt):
            if self._rng.random() < _CROSSING_PROB * self.config.crossings and missing >= 2:
                self._spawn_crossing_pair()
            else:
                self._bodies.append(self._new_body(target=True, inside=False))
        if self.config.distractors:
            want = max(1, self.config.objects // 4)
            if len(self._distractors) < want and self._rng.random() < 0.5 * self._dt:
                self._distractors.append(self._new_body(target=False, inside=False))

    def _advance(self) -> None:
        now = self._index * self._dt
        for body in self._bodies + self._distractors:
            self._steer(body, now)
        self._bodies = self._retire(self._bodies)
        self._distractors = self._retire(self._distractors)
        if self.config.quiet > 0:
            self._next_phase(now)
        if self._phase == "arriving":
            self._births()
        self._move_camera()
        self._index += 1

    def _snapshot(self) -> FrameState:
        now = self._index * self._dt
        gain = self._move_light(now)
        jitter = self._jitter * self._rng.standard_normal(2) if self._jitter else np.zeros(2)
        cam = np.round(self._cam + jitter).astype(int)
        cam[0] = min(max(cam[0], 0), 2 * self.margin_x)
        cam[1] = min(max(cam[1], 0), 2 * self.margin_y)
        views = []
        for body in self._bodies + self._distractors:
            size = math.exp(body.log_size)
            # `size` is the longer side; aspect = width / height.
            w, h = (size, size / body.aspect) if body.aspect >= 1 else (size * body.aspect, size)
            views.append(BodyView(body.uid, body.class_id, body.shape, body.texture, body.x,
                                  body.y, w, h, body.angle, body.vx, body.vy,
                                  body.log_size + body.z_offset))
        views.sort(key=lambda v: v.z)
        return FrameState(
            index=self._index,
            time=now,
            cam_x=int(cam[0]),
            cam_y=int(cam[1]),
            cam_vx=float(self._cam_v[0]),
            cam_vy=float(self._cam_v[1]),
            bodies=tuple(views),
            gain=gain,
            noise_dx=int(self._light.integers(0, 32)),
            noise_dy=int(self._light.integers(0, 32)),
        )
