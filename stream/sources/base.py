"""The source interface: frames in order, an explicit end, counted drops and outages."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from detstream.engines.spec import Detections


@dataclass
class Frame:
    """A decoded frame as a source hands it out.

    Attributes:
        index: 0-based frame number in the stream (gaps mean frames were dropped).
        pts: presentation time in seconds, ``None`` if unknown.
        captured: ``time.perf_counter()`` when it was decoded.
        image: uint8 [H, W, 3] BGR.
        truth: ground truth when the source knows it.
        tag: the producer's own label for the frame, carried unchanged to the finished
            packet (a pushed frame's id, for example, to pair results with requests).
    """

    index: int
    pts: float | None
    captured: float
    image: np.ndarray
    truth: Detections | None = None
    tag: Any = None


@dataclass
class SourceStats:
    """What happened while reading.

    Attributes:
        frames_read: frames decoded.
        frames_dropped: decoded frames replaced by newer ones before being taken (live only).
        frames_skipped: frames that could not be decoded and were passed over (an
            unreadable image in a folder, a damaged stretch of a video file).
        reconnects: successful reconnections after a loss.
        stalls: times the watchdog found a connected stream silent for too long.
        outage_seconds: total time without a connection (or without data, for stalls).
        frames_before_start: frames before the start frame (a resumed run), passed over
            without being processed; counted neither as read nor as skipped.
        error: why reading stopped early (a truncated file, an unreachable stream), if it did.
    """

    frames_read: int = 0
    frames_dropped: int = 0
    frames_skipped: int = 0
    reconnects: int = 0
    stalls: int = 0
    outage_seconds: float = 0.0
    frames_before_start: int = 0
    error: str | None = None


class Source(ABC):
    """Frames from one input, named by URI.

    Attributes:
        uri: what the user wrote.
        live: frames arrive in real time and old ones may be dropped (cameras, network
            streams, paced synthetic scenes); otherwise every frame is delivered (files).
        fps: nominal frame rate, if known.
        size: (width, height), known after the first frame at the latest.
        frames: total frames when known in advance (files), else ``None``.
        stats: counters (see :class:`SourceStats`).
    """

    uri: str
    live: bool
    fps: float | None
    size: tuple[int, int] | None
    frames: int | None

    def __init__(self) -> None:
        self.stats = SourceStats()

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, blocking until there is one; ``None`` at the end of the stream."""

    def close(self) -> None:
        """Stop reading and release the device, file or connection."""
        return None

    @property
    def note(self) -> str | None:
        """What the user should know about how the input was read (frames it passed over,
        the error it ended on), or ``None``."""
        return self.stats.error

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def now() -> float:
        return time.perf_counter()
