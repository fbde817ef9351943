"""The motion gate: on a static camera, run the detector only where it pays.

A live run on a static camera spends most of its detector time on frames where nothing
happens. :class:`MotionGate` is asked, for each frame the detector could take now, whether it
should, and says yes:

- ``first``: on the first frame (and after :meth:`MotionGate.reset` or a new frame size);
- ``camera moving``: while the camera moves (most of the view changing at once, or the view
  shifted as a whole on two calls in a row), and for ``camera_still_seconds`` after: the gate
  is off;
- ``motion``: on new motion, change outside the tracked boxes (something the tracker does not
  cover yet), and on the next ``confirm_frames`` free frames while it goes on, so that the
  tracker gets the detections in a row it needs to start a track;
- ``tracks moving``: while the tracked objects move (a box moved, or the pixels inside one
  changed, within the last ``track_still_seconds``), every ``moving_refresh_seconds``: by
  default on every free frame;
- ``refresh``: tracks in view, however still, every ``refresh_seconds``;
- ``time limit``: ``max_interval_seconds`` after the last detection, whatever else;

and no (``quiet``) otherwise: the tracker carries its tracks on the frames between.

Why moving tracks are detected on every free frame: on the first 30 s of the quiet benchmark
scene (:data:`detstream.stream.bench.gate.QUIET_SCENE`, BoT-SORT fed degraded truth on the
frames the gate passes, :func:`detstream.stream.bench.gate.track_gated`), re-detecting them
every 0.1 s lost 0.24 HOTA against the detector on every frame, every 0.3 s 0.41: the
tracker's prediction alone loses small moving objects within a few frames. The savings are
the frames with nothing moving in view: empty spells, objects standing still. On the whole
scene (3 min, a target in view on 23 % of the frames) the gate ran the detector on 23.6 % of
the frames for a HOTA 0.0012 below always-on (0.7729 against 0.7741).

The measure, on a small grey view (``GateConfig.width`` pixels wide; about 0.23 ms a call on a
quiet 1280x720 frame and 0.6 ms with tracked objects moving, on one core of this machine):

- bilinear resize (INTER_AREA from 1280x720 costs 1.2 ms, bilinear 0.03 ms), grey, 5x5 blur:
  the synthetic world's sensor noise and lighting left at most 9 grey levels of difference
  on empty frames;
- the exposure: the view's brightness against the background's, outside the tracked boxes
  and saturated pixels; the background scaled by it (and clipped where it saturates) is what
  the view is compared with, so that a lighting or exposure step is no motion;
- a background that follows the scene outside the tracked boxes with a time constant
  (``cv2.accumulateWeighted``, its weight from the time since the last call, so that the gate
  behaves the same asked on every frame or every fifth; faster in the first seconds, whose
  background holds whatever stood in view). Where a tracked box was and no longer is, the
  view is taken into the background as it is: a tracked object leaves no ghost behind;
- changed pixels counted over the whole view and outside the grown tracked boxes; when
  enough changed, a phase correlation against the background (tracked boxes filled in from
  it) for a global shift.

Motion the detector has already looked at (blobs touching the motion present at the last
detection, followed from call to call) asks for it again only every
``motion_repeat_seconds``: a swaying tree, or a moving shape of no class, would otherwise keep
it running on every frame. Motion anywhere else asks at once.
"""


from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

_SATURATED = 250.0  # grey level of the view from which a pixel may be clipped: no measure

#: The reasons a :class:`GateDecision` gives, in the order they are considered.
REASONS = ("first", "camera moving", "motion", "tracks moving", "refresh", "time limit",
           "quiet")


@dataclass(frozen=True)
class GateConfig:
    """When the detector must run on a static camera (defaults chosen by
    :mod:`detstream.stream.bench.gate`'s measurements; see the module's notes).

    Attributes:
        width: width in pixels of the downscaled grey view the measure runs on (its height
            keeps the frame's aspect). At 160 px a 1280x720 frame's 8x8 blocks are one pixel.
        threshold: the difference in grey levels (0-255, after the blur, against the
            background at the view's exposure) at which a pixel of the view counts as
            changed. On the synthetic world's empty frames (sensor noise, lighting drifts and
            steps) no pixel differed by more than 9; 10 found objects coming into an empty
            view a frame or two sooner than 18 there, 18 leaves room for real cameras'
            compression noise. An object of nearly its background's brightness may stay below
            this and be found only by a refresh or the time limit.
        min_area: the fraction of the view that must change outside the tracked boxes to
            count as motion (at 160x120, 0.001 is 19 pixels: an object about 18 px across in
            a 640x480 frame, 35 px in 1280x720); also the least change at which the camera
            is looked at for a shift.
        refresh_seconds: tracks in view are re-detected at least this often, however still
            they stand.
        moving_refresh_seconds: tracks that move (see ``track_motion``) are re-detected at
            least this often; 0: on every frame the detector is free for.
        track_motion: the tracks move when this fraction of a box's pixels changed, or a box
            moved by a pixel of the view (or a tenth of its side when larger), since they were
            last seen moving.
        track_still_seconds: the tracks are still (re-detected only every
            ``refresh_seconds``) once they have not moved for this long.
        max_interval_seconds: the detector runs at least this often whatever the measure
            says, so that nothing it cannot see (an object of the background's colour, one
            that came in under ``min_area``) is missed for longer.
        camera_motion: the fraction of the whole view changing at once above which the
            camera is taken as moving (the gate is then off: every free frame is detected).
        camera_shift: a global shift of the view against the background, in pixels of the
            view, above which the camera is taken as moving (catches pans that change few
            pixels at a time).
        camera_confidence: the least phase-correlation response for ``camera_shift`` to be
            believed. Pans measured 0.26-0.56 at their 5th percentile; of the 7 false shifts
            of a pixel or more on two busy static scenes (objects moving, the rest still) 6
            were under 0.2 (the other 0.35, and a shift must be seen twice in a row).
        camera_still_seconds: after the camera last moved, the gate stays off this long (a pan
            that pauses for a moment is still a moving camera).
        background_seconds: the time constant with which the background follows the scene
            outside the tracked boxes: what stops moving (a parked car, an opened door, light
            that changed in one part of the view) is background after a few of these.
        box_margin: tracked boxes are grown by this fraction of their size, plus a pixel of
            the view, on every side before motion inside them is set aside (a box may be from
            a frame or two earlier, and motion blur smears an object beyond it).
        motion_repeat_seconds: motion the detector has already looked at asks for it again
            at most this often; motion anywhere else asks at once.
        confirm_frames: after motion asks for the detector, it keeps asking on this many more
            free frames while motion outside the tracks goes on (the tracker confirms a track
            after two detections in a row, ``min_hits``; the others are to spare for a missed
            or low-scoring one).
        seen_margin: pixels of the view by which motion the detector looked at is grown
            before later motion touching it counts as the same mover.
    """

    width: int = 160
    threshold: float = 18.0
    min_area: float = 0.001
    refresh_seconds: float = 1.0
    moving_refresh_seconds: float = 0.0
    track_motion: float = 0.05
    track_still_seconds: float = 0.5
    max_interval_seconds: float = 5.0
    camera_motion: float = 0.5
    camera_shift: float = 1.0
    camera_confidence: float = 0.2
    camera_still_seconds: float = 1.0
    background_seconds: float = 2.0
    box_margin: float = 0.15
    motion_repeat_seconds: float = 0.5
    confirm_frames: int = 3
    seen_margin: int = 2

    def __post_init__(self) -> None:
        if not 16 <= self.width <= 1024:
            raise ValueError(f"width must be between 16 and 1024 pixels, got {self.width}")
        if not 0.0 < self.threshold < 255.0:
            raise ValueError(f"threshold must be between 0 and 255, got {self.threshold:g}")
        for name in ("min_area", "camera_motion", "track_motion"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a fraction in (0, 1], "
                                 f"got {getattr(self, name):g}")
        for name in ("refresh_seconds", "max_interval_seconds", "background_seconds",
                     "camera_shift"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name):g}")
        for name in ("moving_refresh_seconds", "track_still_seconds", "camera_still_seconds",
                     "box_margin", "motion_repeat_seconds", "camera_confidence",
                     "confirm_frames", "seen_margin"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be zero or positive, got {getattr(self, name):g}")


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer for one frame.

    Attributes:
        detect: run the detector on this frame.
        reason: why, one of :data:`REASONS` (see the module's notes).
        changed: the fraction of the view changed outside the tracked boxes (0 when not
            measured: the first frame, a moving camera).
    """

    detect: bool
    reason: str
    changed: float = 0.0


class MotionGate:
    """Decides, frame by frame, whether the detector must run (see the module's notes).

    One gate per stream, used from one thread. Call :meth:`decide` for each frame the detector
    could take now; a ``detect=True`` answer counts as a detection run on that frame (the
    detector is free and takes it). Call :meth:`detected` when the detector ran on a frame
    the gate did not pass (a forced detection), so that its clocks know.

    Args:
        config: the thresholds; the defaults when ``None``.
        fps: the stream's frame rate, used only before two frames have been seen (the
            background's first update weight).
    """

    def __init__(self, config: GateConfig | None = None, fps: float = 30.0) -> None:
        self.config = config or GateConfig()
        self.fps = fps if fps > 0 else 30.0
        self._frame: tuple[int, int] | None = None  # (width, height) of the frames
        self._size = (0, 0)  # (width, height) of the view
        self._window: np.ndarray | None = None  # Hanning window for phase correlation
        self.reset()

    # ----------------------------------------------------------------- public
    def reset(self) -> None:
        """Forget the scene, the clocks and the counts (a new source, a scene cut)."""
        self._background: np.ndarray | None = None  # float32 view, the scene without movers
        self._seen: np.ndarray | None = None  # uint8 mask: motion looked at by the detector
        # The view, tracked boxes (view pixels) and time when the tracks last moved.
        self._reference: tuple[np.ndarray, np.ndarray, float] | None = None
        self._last_call: float | None = None
        self._started = 0.0  # capture time of the background's first frame
        self._outside_before: np.ndarray | None = None  # the last call's outside-boxes mask
        self._last_detection: float | None = None
        self._last_decided: float | None = None  # capture time of the last yes
        self._moving_until = -math.inf
        self._shifts = 0  # calls in a row on which the view shifted
        self._confirm_left = 0  # free frames still to detect while untracked motion goes on
        self._why: Counter[str] = Counter()
        self._detections = 0
        self._skipped = 0
        self._camera_moving_frames = 0

    def decide(self, image: np.ndarray, tracked_boxes: np.ndarray, captured: float
               ) -> GateDecision:
        """Whether the detector should run on this frame.

        Args:
            image: the frame, BGR uint8 [H, W, 3] (grey [H, W] is taken too).
            tracked_boxes: float [N, 4] ``xyxy`` frame pixels of the current tracks (may be
                from a frame or two earlier); N may be 0.
            captured: the frame's capture time, seconds (``time.perf_counter`` clock).
        """
        cfg = self.config
        view = self._view(image)
        boxes = self._to_view(tracked_boxes, image.shape[1], image.shape[0])
        outside = self._outside(boxes)
        since_call = captured - self._last_call if self._last_call is not None \
            else 1.0 / self.fps
        self._last_call = captured
        if self._background is None:
            self._started = captured
            self._outside_before = outside
            self._background = view
            self._seen = np.zeros(view.shape, np.uint8)
            return self._yes("first", captured)
        raw = view
        gain, usable = self._exposure(raw, outside)
        view = raw * (1.0 / gain)  # at the background's exposure
        # The background as this exposure shows it, clipped where it saturates: a pixel
        # saturated now is compared with what saturation makes of the background there.
        changed = self._changed(raw, np.minimum(self._background * gain, 255.0))
        if self._camera_moves(view, changed, outside, captured):
            # The background is a stale picture now: the reference becomes this frame, and
            # the gate stays off until the camera has been still for a while.
            self._moving_until = captured + cfg.camera_still_seconds
            self._background = view
            self._seen = np.zeros(view.shape, np.uint8)
            self._reference = None
            self._camera_moving_frames += 1
            return self._yes("camera moving", captured)
        if captured < self._moving_until:
            # The reference stays as it is (a slow pan adds up against it) until still.
            self._camera_moving_frames += 1
            return self._yes("camera moving", captured)
        # The first frame's background holds whatever stood in view then, not yet tracked: it
        # follows the scene faster at first (a time constant of half the time since, at least
        # 0.2 s), so that what moves off its first place leaves no lasting ghost.
        tau = min(cfg.background_seconds, max(0.2, 0.5 * (captured - self._started)))
        cv2.accumulateWeighted(view, self._background,
                               1.0 - math.exp(-max(since_call, 0.0) / tau),
                               mask=cv2.bitwise_and(outside, usable))
        moved = cv2.bitwise_and(changed, outside)
        if self._outside_before is not None:
            # Where a tracked box was and is no more, the object has gone on and the view
            # shows the background it hid (or that the background never had, when it stood
            # there from the first frame): taken as it is, and no motion, so that no ghost
            # is left behind.
            revealed = cv2.bitwise_and(cv2.bitwise_and(outside, usable),
                                       cv2.bitwise_not(self._outside_before))
            cv2.copyTo(view, revealed, self._background)
            moved = cv2.bitwise_and(moved, cv2.bitwise_not(revealed))
        self._outside_before = outside
        fraction = cv2.countNonZero(moved) / moved.size
        since = captured - self._last_detection if self._last_detection is not None \
            else math.inf
        new, followed = self._new_motion(moved) if fraction else (0.0, None)
        if fraction >= cfg.min_area:
            # New motion asks at once; motion that goes on outside the tracks after that
            # keeps asking for `confirm_frames` free frames, then every
            # `motion_repeat_seconds` (a mover of no class never becomes a track).
            if new >= cfg.min_area or since >= cfg.motion_repeat_seconds:
                self._confirm_left = cfg.confirm_frames
                return self._yes("motion", captured, fraction, moved)
            if self._confirm_left > 0:
                self._confirm_left -= 1
                return self._yes("motion", captured, fraction, moved)
        else:
            self._confirm_left = 0
        if not len(boxes):
            self._reference = None
        else:
            if self._tracks_move(view, boxes, captured) and since >= cfg.moving_refresh_seconds:
                return self._yes("tracks moving", captured, fraction, moved)
            if since >= cfg.refresh_seconds:
                return self._yes("refresh", captured, fraction, moved)
        if since >= cfg.max_interval_seconds:
            return self._yes("time limit", captured, fraction, moved)
        # Motion too small to be new yet stays new (an object coming in at an edge grows into
        # view a few pixels at a time); only blobs going on from looked-at motion are followed.
        self._follow(followed() if followed is not None else moved)
        self._skipped += 1
        self._why["quiet"] += 1
        return GateDecision(False, "quiet", fraction)

    def detected(self, captured: float) -> None:
        """The detector ran on a frame captured at ``captured`` (seconds, the clock of
        :meth:`decide`); a frame the gate already passed is not counted twice."""
        if captured == self._last_decided:
            return
        self._detections += 1
        self._why["forced"] += 1
        if self._last_detection is None or captured > self._last_detection:
            self._last_detection = captured

    @property
    def stats(self) -> dict:
        """``{"detections_run": n, "skipped": n, "why": {reason: n, ...},
        "camera_moving_frames": n}``: counts since the start or :meth:`reset`. ``why`` counts
        every answer by its reason, and :meth:`detected` calls for frames the gate did not
        pass as ``forced``."""
        return {"detections_run": self._detections, "skipped": self._skipped,
                "why": dict(self._why), "camera_moving_frames": self._camera_moving_frames}

    # ----------------------------------------------------------------- measure
    def _view(self, image: np.ndarray) -> np.ndarray:
        """The frame as the small, blurred grey float32 view."""
        cfg = self.config
        height, width = image.shape[:2]
        if self._frame != (width, height):
            self._frame = (width, height)
            self._size = (cfg.width, max(8, int(round(cfg.width * height / width))))
            self._window = cv2.createHanningWindow(self._size, cv2.CV_32F)
            self._background = None  # a new frame size: start again
        # Bilinear reads 2x2 pixels per view pixel (INTER_AREA would read all 8x8 of a
        # 1280x720 frame's: 1.2 instead of 0.03 ms); the blur then averages 5x5 of those.
        small = cv2.resize(image, self._size, interpolation=cv2.INTER_LINEAR)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(small.astype(np.float32), (5, 5), 0)

    def _to_view(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Frame-pixel ``xyxy`` boxes in view pixels, float64 [N, 4]."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return boxes * np.array([self._size[0] / width, self._size[1] / height] * 2)

    def _outside(self, boxes: np.ndarray) -> np.ndarray:
        """uint8 mask of the view, 255 outside the grown tracked boxes."""
        w, h = self._size
        mask = np.full((h, w), 255, np.uint8)
        if not len(boxes):
            return mask
        grow = self.config.box_margin * (boxes[:, 2:] - boxes[:, :2]) + 1.0
        lo = np.floor(boxes[:, :2] - grow).astype(int)
        hi = np.ceil(boxes[:, 2:] + grow).astype(int)
        lo, hi = lo.clip(0, [w, h]), hi.clip(0, [w, h])
        for (x0, y0), (x1, y1) in zip(lo, hi, strict=True):
            mask[y0:y1, x0:x1] = 0
        return mask

    def _exposure(self, raw: np.ndarray, outside: np.ndarray) -> tuple[float, np.ndarray]:
        """The view's brightness against the background's (an exposure or lighting step, taken
        over the view outside the tracked boxes) and the mask of its unsaturated pixels."""
        usable = cv2.compare(raw, _SATURATED, cv2.CMP_LT)
        both = cv2.bitwise_and(usable, cv2.compare(self._background, _SATURATED, cv2.CMP_LT))
        both = cv2.bitwise_and(both, outside)
        if cv2.countNonZero(both) < 0.05 * both.size:
            return 1.0, usable
        now = cv2.mean(raw, mask=both)[0]
        then = cv2.mean(self._background, mask=both)[0]
        if now < 1.0 or then < 1.0:
            return 1.0, usable
        # Clamped: a frame gone black or white is change, not an exposure step.
        return float(np.clip(now / then, 0.25, 4.0)), usable

    def _changed(self, view: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """uint8 mask, 255 where ``view`` differs from ``reference`` by the threshold."""
        diff = cv2.absdiff(view, reference)
        return cv2.threshold(diff, self.config.threshold, 255, cv2.THRESH_BINARY)[1].astype(
            np.uint8)

    def _camera_moves(self, view: np.ndarray, changed: np.ndarray, outside: np.ndarray,
                      captured: float) -> bool:
        """Most of the view changed at once, or the view shifted against the background."""
        cfg = self.config
        count = cv2.countNonZero(changed)
        if count >= cfg.camera_motion * changed.size:
            return True
        if count < cfg.min_area * changed.size:
            self._shifts = 0
            # Nothing changed, no pan to look for (a slow one over a smooth scene soon changes
            # enough against the lagging background): the quiet frames that are most of a
            # static camera's skip the phase correlation's 0.15 ms.
            return False
        # Tracked objects' own motion is no camera motion: inside their boxes the view is
        # taken as the background (a busy static scene measured shifts of 0.9 px at the 99th
        # percentile without this, 0.5 with it).
        filled = self._background.copy()
        cv2.copyTo(view, outside, filled)
        (dx, dy), response = cv2.phaseCorrelate(self._background, filled, self._window)
        shifted = math.hypot(dx, dy) >= cfg.camera_shift and response >= cfg.camera_confidence
        # A pan goes on; a false shift (objects moving one way in a static view, the first
        # frame's movers in the background) mostly does not: a shift starts a moving camera
        # when seen on two calls in a row, and keeps one moving when seen once.
        self._shifts = self._shifts + 1 if shifted else 0
        return self._shifts >= 2 or (shifted and captured < self._moving_until)

    def _new_motion(self, moved: np.ndarray) -> tuple[float, Callable[[], np.ndarray]]:
        """The fraction of the view in motion blobs that touch nothing the detector has looked
        at, and a function making the mask of those that do (made only when needed)."""
        count, labels, blobs, _ = cv2.connectedComponentsWithStats(moved, connectivity=8)
        looked = np.zeros(count, bool)
        looked[labels[self._seen > 0]] = True
        looked[0] = False  # label 0 is everything that did not move
        new = int(blobs[1:, cv2.CC_STAT_AREA][~looked[1:]].sum())

        def followed() -> np.ndarray:
            return np.take(looked.astype(np.uint8) * np.uint8(255), labels)

        return new / moved.size, followed

    def _tracks_move(self, view: np.ndarray, boxes: np.ndarray, captured: float) -> bool:
        """Whether the tracks are moving: a box moved, or the pixels inside one changed,
        against the reference (the view and boxes when motion was last seen), or that was less
        than ``track_still_seconds`` ago."""
        cfg = self.config
        ref = self._reference
        if ref is None or len(ref[1]) != len(boxes) or self._moved_since(ref, view, boxes):
            self._reference = (view, boxes, captured)  # a track came or went, or moved
            return True
        return captured - ref[2] < cfg.track_still_seconds

    def _moved_since(self, reference: tuple[np.ndarray, np.ndarray, float], view: np.ndarray,
                     boxes: np.ndarray) -> bool:
        then_view, then_boxes, _ = reference
        # Each box against the nearest one then (the tracker's order may change); a shift of
        # a pixel of the view, or a tenth of the box's side when larger (a refresh corrects
        # a big box by more than a pixel).
        shift = np.abs(boxes[:, None, :] - then_boxes[None, :, :]).max(axis=2).min(axis=1)
        side = (boxes[:, 2:] - boxes[:, :2]).max(axis=1)
        if np.any(shift >= np.maximum(1.0, 0.1 * side)):
            return True
        w, h = self._size
        counts = cv2.integral(self._changed(view, then_view) // 255)
        lo = np.floor(boxes[:, :2]).astype(int).clip(0, [w, h])
        hi = np.ceil(boxes[:, 2:]).astype(int).clip(0, [w, h])
        inside = (counts[hi[:, 1], hi[:, 0]] - counts[lo[:, 1], hi[:, 0]]
                  - counts[hi[:, 1], lo[:, 0]] + counts[lo[:, 1], lo[:, 0]])
        area = np.maximum((hi - lo).prod(axis=1), 1)
        return bool(np.any(inside >= self.config.track_motion * area))

    def _follow(self, moved: np.ndarray) -> None:
        """Remember ``moved`` (grown by ``seen_margin``) as motion the detector has looked at."""
        m = self.config.seen_margin
        self._seen = cv2.dilate(moved, np.ones((2 * m + 1, 2 * m + 1), np.uint8)) if m \
            else moved

    def _yes(self, reason: str, captured: float, fraction: float = 0.0,
             moved: np.ndarray | None = None) -> GateDecision:
        self._detections += 1
        self._why[reason] += 1
        self._last_decided = captured
        if self._last_detection is None or captured > self._last_detection:
            self._last_detection = captured
        if moved is not None:
            # What the detector is about to see: motion that goes on from it is not new.
            self._follow(moved)
        return GateDecision(True, reason, fraction)
