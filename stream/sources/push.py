"""A live source fed from outside: the application pushes frames, the pipeline takes the
newest one.

This is how frames that arrive over a transport the pipeline does not own (a browser's webcam
over a WebSocket, a callback from a capture SDK, frames an application renders itself) enter
the same pipeline as cameras and files, with the same newest-frame slot and drop counting as
every other live source.

Example:
    >>> source = PushSource(fps=30)
    >>> pipeline = Pipeline(source, predictor, on_packet=show)   # see stream.pipeline
    >>> pipeline.start()
    >>> source.push(frame, tag=17)   # from any thread; returns the tags it replaced
    >>> source.end()                 # the pipeline finishes what it holds and stops
"""

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np

from detstream.engines.errors import UserInputError
from detstream.stream.sources.base import Frame
from detstream.stream.sources.reader import SlotSource


class PushSource(SlotSource):
    """Frames handed in with :meth:`push`, read by the pipeline like any live source.

    Args:
        uri: a name for logs and statistics (``push://`` by default).
        fps: the nominal frame rate, if the producer knows it (the tracker's motion model
            uses it; ``None``: 30).
        drop: keep only the newest frame, counting the ones replaced before the pipeline took
            them (the default: latency never builds up). With ``False`` every frame is kept
            and :meth:`push` waits while ``capacity`` frames are waiting.
        capacity: frames that may wait with ``drop=False``.
        paced: the producer pushes frames at its own rate (a camera callback), so waiting
            briefly for the next frame when the newest is stale lowers latency; ``False``
            when the producer waits for results before pushing more (the demo's browser).
    """

    def __init__(self, uri: str = "push://", fps: float | None = None, drop: bool = True,
                 capacity: int = 8, paced: bool = True) -> None:
        super().__init__(uri, drop=drop, capacity=capacity)
        self.paced = paced
        self.fps = fps
        self.size: tuple[int, int] | None = None
        self.frames = None
        self._index = 0
        self._lock = threading.Lock()
        self.unreadable: list[Any] = []

    def push(self, image: np.ndarray | bytes, tag: Any = None, captured: float | None = None,
             pts: float | None = None) -> list[Any]:
        """Offer one frame (safe from any thread).

        Args:
            image: uint8 [H, W, 3] BGR, or an encoded image (JPEG, PNG, WebP bytes) that is
                decoded only if the pipeline takes it: a frame replaced before then costs
                nothing. The pipeline reads it later: do not reuse the buffer.
            tag: anything the producer wants back on the finished packet (``packet.tag``).
            captured: ``time.perf_counter()`` when it was captured (default: now); latency is
                measured from it.
            pts: presentation time in seconds, if known.

        Returns:
            The tags of the frames this one replaced before the pipeline took them (dropped),
            so a transport can tell its peer; empty when nothing was dropped.

        Raises:
            UserInputError: the image is not uint8 [H, W, 3], or the source has ended.
        """
        encoded = isinstance(image, (bytes, bytearray, memoryview))
        if encoded:
            if not len(image):
                raise UserInputError("push() got an empty encoded image")
        elif not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                  and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0):
            shape = getattr(image, "shape", None)
            dtype = getattr(image, "dtype", type(image).__name__)
            raise UserInputError(f"push() expects a uint8 [H, W, 3] BGR image or encoded "
                                 f"image bytes, got {dtype} "
                                 f"{list(shape) if shape is not None else ''}".rstrip())
        if self._ended:
            raise UserInputError("push() after end(): this source has finished")
        with self._lock:  # indices follow push order even with several producers
            index = self._index
            self._index += 1
            if not encoded:
                self.size = (image.shape[1], image.shape[0])
            frame = Frame(index, pts, time.perf_counter() if captured is None else captured,
                          image, tag=tag)
            dropped = self._put(frame)
        return [old.tag for old in dropped]

    def wait_for_fresh_frame(self) -> None:
        """Wait for a fresher frame only when the producer pushes at its own pace
        (:attr:`paced`); a producer that sends the next frame when it gets a result (a
        browser with a few frames in flight) would only leave the model idle meanwhile."""
        if self.paced:
            super().wait_for_fresh_frame()

    def read(self) -> Frame | None:
        """The newest frame, decoded now if it was pushed encoded; frames that do not decode
        are skipped and their tags kept in :attr:`unreadable`."""
        while (frame := super().read()) is not None:
            if isinstance(frame.image, np.ndarray):
                return frame
            image = cv2.imdecode(np.frombuffer(frame.image, np.uint8), cv2.IMREAD_COLOR)
            if image is not None:
                self.size = (image.shape[1], image.shape[0])
                frame.image = image
                return frame
            with self._lock:
                self.unreadable.append(frame.tag)
        return None

    def take_unreadable(self) -> list[Any]:
        """Tags of pushed frames that could not be decoded since the last call."""
        with self._lock:
            tags, self.unreadable = self.unreadable, []
        return tags

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self) -> None:
        """No more frames: the pipeline processes what it holds, then finishes."""
        self._finish()

    def close(self) -> None:
        self._finish()
