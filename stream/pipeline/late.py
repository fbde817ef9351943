"""Tracking at the camera's rate with detections that come back late.

On a live source the pipeline tracks and draws every frame as it arrives while the detector
works beside it, one frame at a time, on the newest frame; a detection made on frame ``t``
comes back while frame ``t + k`` is being tracked. :class:`LateTracking` applies it where it
belongs: it goes back to the tracks as they were on frame ``t`` (it keeps the tracker's state
before each recent frame), associates the detections there, and brings the tracks forward to
the present by predicting through the frames in between again (with their images, for camera
motion). Late detections so improve the tracks instead of pulling them back to where the
objects were.

Without a tracker the newest detections are shown on every frame until the next ones come.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from detstream.engines.spec import Detections
from detstream.stream.track.base import Tracker, TrackEvent

#: The most frames of tracker states (and images) kept for late detections; a detection later
#: than this is applied on the oldest frame kept.
HISTORY_FRAMES = 32


@dataclass(eq=False)
class DetectionJob:
    """The detector's work on one frame.

    Attributes:
        index: the frame it was made on.
        image: that frame (the tracker's camera-motion and scene-cut checks look at it).
        ready: whether the result can be had without waiting.
        resolve: the frame's detections (frame pixels); called once, when ``ready``.
        wait: wait up to this many seconds for the result; True when it is ready.
    """

    index: int
    image: np.ndarray
    ready: Callable[[], bool]
    resolve: Callable[[], Detections]
    wait: Callable[[float], bool] | None = None


@dataclass
class LateStats:
    """What late detections did: how many were applied and how late (frames)."""

    applied: int = 0
    frames_late: int = 0
    frames_late_max: int = 0

    def report(self) -> dict:
        return {"applied": self.applied,
                "frames_late_mean": round(self.frames_late / max(self.applied, 1), 2),
                "frames_late_max": self.frames_late_max}


@dataclass
class Step:
    """One frame's result: the tracks to report, the frame's track events (those brought by
    late detections first) and the detector's output on this frame or earlier ones that was
    applied with it (``(index, detections)``, for scoring)."""

    detections: Detections
    events: list[TrackEvent]
    found: list[tuple[int, Detections]]


@dataclass(eq=False)
class _Past:
    """A recent frame: its index, image and the tracker's state just before it."""

    index: int
    image: np.ndarray
    state: Any


class LateTracking:
    """Track every frame at once, applying each frame's detections when they come.

    Args:
        tracker: the stream's tracker (``None``: detections only, held until the next).
        class_names: the model's class names (for empty results).
        history: frames of tracker states kept for late detections.
    """

    def __init__(self, tracker: Tracker | None, class_names: tuple[str, ...],
                 history: int = HISTORY_FRAMES) -> None:
        self.tracker = tracker
        self.class_names = class_names
        self.history = max(1, history)
        self.stats = LateStats()
        self._lock = threading.Lock()
        self._inbox: list[DetectionJob] = []  # submitted from other threads
        self._jobs: list[DetectionJob] = []  # waiting for their results, by frame index
        self._past: deque[_Past] = deque()
        self._last = -1  # the last frame tracked
        self._held = Detections.empty(class_names)  # without a tracker: the newest result

    def use(self, tracker: Tracker | None) -> None:
        """Track with another tracker from now on (a run reconfigured); the detections still
        out were made for the old one's tracks and are dropped."""
        self.tracker = tracker
        with self._lock:
            self._inbox.clear()
        self._jobs.clear()
        self._past.clear()
        self._held = Detections.empty(self.class_names)

    def submit(self, job: DetectionJob) -> None:
        """A detection job on a frame tracked already or still to come (any thread)."""
        with self._lock:
            self._inbox.append(job)

    def job_for(self, index: int) -> DetectionJob | None:
        """The job submitted on frame ``index``, if any (not applied yet)."""
        with self._lock:
            for job in self._inbox:
                if job.index == index:
                    return job
        return next((job for job in self._jobs if job.index == index), None)

    @property
    def waiting(self) -> int:
        """Jobs submitted and not applied yet."""
        with self._lock:
            return len(self._jobs) + len(self._inbox)

    def step(self, index: int, image: np.ndarray, job: DetectionJob | None = None,
             keep_states: bool = True) -> Step:
        """Track frame ``index`` (``image``).

        Args:
            job: this frame's own detection job, if it has one (it may also have come
                through :meth:`submit`).
            keep_states: keep the tracker's state before this frame, so that a detection on
                it submitted later can still be applied where it belongs (live sources).
        """
        events: list[TrackEvent] = []
        found: list[tuple[int, Detections]] = []
        with self._lock:
            if self._inbox:
                self._jobs.extend(self._inbox)
                self._inbox.clear()
        if job is not None:
            self._jobs.append(job)
        self._jobs.sort(key=lambda j: j.index)
        self._apply_late(events, found)
        # A file's frame waits for its own result, so it needs no state to go back to (the
        # deep copy cost 0.5 ms a frame); a job still out on it or a later frame does.
        if keep_states or any(j.index >= index and not j.ready() for j in self._jobs):
            self._past.append(_Past(index, image, self._snapshot()))
        own = next((j for j in self._jobs if j.index == index and j.ready()), None)
        if own is not None:
            self._jobs.remove(own)
            detections = own.resolve()
            found.append((index, detections))
            out = self._update(detections, image, events)
        else:
            out = self._carry(image, events)
        self._last = index
        self._trim()
        return Step(out, events, found)

    # ------------------------------------------------------------------ helpers
    def _apply_late(self, events: list[TrackEvent], found: list[tuple[int, Detections]]
                    ) -> None:
        """Apply the finished jobs on frames tracked already, oldest first; a later one waits
        for an earlier one (tracks move forward in frame order)."""
        while self._jobs and self._jobs[0].index <= self._last and self._jobs[0].ready():
            job = self._jobs.pop(0)
            detections = job.resolve()
            found.append((job.index, detections))
            start = next((i for i, past in enumerate(self._past) if past.index >= job.index),
                         None)
            if start is None:  # no state kept (files): nothing to go back to
                if self.tracker is None:
                    self._held = detections
                continue
            replay = list(self._past)[start:]
            if self.tracker is not None:
                self.tracker.restore(replay[0].state)
            replay[0].state = None  # taken over by the tracker (one job per frame)
            # Its frame again, with its detections this time, then the frames since: each
            # one's state before it is now the one with these detections.
            self._update(detections, replay[0].image, events)
            for past in replay[1:]:
                past.state = self._snapshot()
                self._carry(past.image, events)
            late = self._last + 1 - job.index
            self.stats.applied += 1
            self.stats.frames_late += late
            self.stats.frames_late_max = max(self.stats.frames_late_max, late)

    def _trim(self) -> None:
        """Forget the states no job can need: before the oldest job waiting, or before the
        last two frames when none waits (the detector takes the newest frame, which may just
        have been tracked); never more than ``history`` frames (a job on an older frame is
        applied on the oldest frame kept)."""
        keep_from = self._last - 1
        if self._jobs:
            keep_from = min(keep_from, self._jobs[0].index)
        keep_from = max(keep_from, self._last + 1 - self.history)
        while self._past and self._past[0].index < keep_from:
            self._past.popleft()

    def _snapshot(self) -> Any:
        return self.tracker.snapshot() if self.tracker is not None else None

    def _update(self, detections: Detections, image: np.ndarray,
                events: list[TrackEvent]) -> Detections:
        if self.tracker is None:
            self._held = detections
            return detections
        out = self.tracker.update(detections, image)
        events.extend(self.tracker.events)
        return out

    def _carry(self, image: np.ndarray, events: list[TrackEvent]) -> Detections:
        if self.tracker is None:
            return self._held
        out = self.tracker.carry(Detections.empty(self.class_names), image)
        events.extend(self.tracker.events)
        return out
