"""How frames get from a grabber to the pipeline: directly (files, every frame, backpressure)
or through a reader thread into a newest-frame slot (live sources, old frames dropped).

A *grabber* knows one kind of input (a file, a camera, a network stream ...):

- ``open()`` connects (raising :class:`~detstream.engines.errors.UserInputError` with a clear
sentence, or
  ``ConnectionError`` when a live input is unreachable);
- ``grab()`` returns ``(image, pts, truth)`` for the next frame, ``None`` at the end, and
  raises ``ConnectionError`` when a live input is lost (:class:`StreamStalled` when it went
  silent with its connection open);
- ``close()``; attributes ``fps``, ``size``, ``frames``, and optionally ``skipped`` (damaged
  frames or unreadable images passed over so far, counted in ``stats.frames_skipped``; the
  frame indices keep their place, so each skip leaves a gap);
- optionally ``seek_frame(n)``: make the next ``grab()`` return frame position ``n`` of the
  current pass, exactly as reading from the start would, or return False (a start frame is
  then reached by reading and discarding).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from detstream.engines.errors import UserInputError
from detstream.stream.sources.base import Frame, Source
from detstream.stream.sources.grabbers import StreamStalled

Log = Callable[[str], None]


class _GrabberNote:
    """The note of a source that reads a grabber: what the grabber noticed (frames it
    passed over) before the error the source ended on."""

    grabber: Any
    stats: Any

    @property
    def note(self) -> str | None:
        return getattr(self.grabber, "note", None) or self.stats.error


class DirectSource(_GrabberNote, Source):
    """Every frame, read in the caller's thread (files, image folders, unpaced scenes).

    Args:
        uri: what the user wrote.
        grabber: the input.
        loop: play the input this many more times after the first (``-1``: forever), as
            jetson-utils' ``--input-loop``; frame indices and timestamps keep counting up
            across passes, so every frame of the run has its own index and time.
        start_frame: the first frame index delivered. The frames before it are read and
            discarded (video is decoded: a keyframe seek would not land on an exact frame
            index once damaged frames or variable timing are involved), or jumped over where
            the grabber can do so exactly (image folders); every later frame keeps the index
            and time it has when read from the start. They count in
            ``stats.frames_before_start``, not as read or skipped.
    """

    def __init__(self, uri: str, grabber: Any, loop: int = 0, start_frame: int = 0) -> None:
        super().__init__()
        self.uri, self.live = uri, False
        self.grabber = grabber
        grabber.open()
        self.fps, self.size, self.frames = grabber.fps, grabber.size, grabber.frames
        self.loops_left = loop
        if loop and self.frames:
            self.frames = None if loop < 0 else self.frames * (loop + 1)
        self._index = 0
        self._pts_offset = 0.0  # seconds of the passes already played
        self._last_pts: float | None = None
        self._skips = 0  # the grabber's damaged-frame count already taken into account
        self.start_frame = max(0, start_frame)
        seek = getattr(grabber, "seek_frame", None)
        if (self.start_frame and seek is not None
                and self.start_frame < (grabber.frames or 0) and seek(self.start_frame)):
            self._index = self.stats.frames_before_start = self.start_frame

    def _next_pass(self) -> bool:
        """Start the input again from its beginning; False when no pass is left."""
        if self.loops_left == 0:
            return False
        self.loops_left -= 1 if self.loops_left > 0 else 0
        rewind = getattr(self.grabber, "rewind", None)
        if rewind is None or not rewind():
            self.grabber.close()
            self.grabber.open()
        if self._last_pts is not None:
            self._pts_offset = self._last_pts + 1.0 / (self.fps or 30.0)
        return True

    def read(self) -> Frame | None:
        while True:
            try:
                item = self.grabber.grab()
                if item is None and self._next_pass():
                    item = self.grabber.grab()
            except (UserInputError, ConnectionError) as exc:  # a damaged file, a lost stream
                self.stats.error = str(exc)
                return None
            finally:
                self._count_skips()
            if item is None:
                return None
            image, pts, truth = item
            if pts is not None:
                pts += self._pts_offset
                self._last_pts = pts
            if self._index >= self.start_frame:
                break
            self._index += 1  # before the start frame: read, not delivered
            self.stats.frames_before_start += 1
        frame = Frame(self._index, pts, time.perf_counter(), image, truth)
        self._index += 1
        self.stats.frames_read += 1
        self.size = self.size or (image.shape[1], image.shape[0])
        return frame

    def _count_skips(self) -> None:
        """Damaged frames the grabber passed over since the last call keep their indices;
        before the start frame they count in ``frames_before_start``."""
        skipped = getattr(self.grabber, "skipped", 0)
        grown, self._skips = skipped - self._skips, skipped
        if self._index < self.start_frame:
            self.stats.frames_before_start += grown
        else:
            self.stats.frames_skipped += grown
        self._index += grown

    def close(self) -> None:
        self.grabber.close()


def _newly_skipped(grabber: Any, stats) -> int:
    """Bring ``stats.frames_skipped`` up to the grabber's count; returns how many it grew."""
    skipped = getattr(grabber, "skipped", 0)
    grown = skipped - stats.frames_skipped
    stats.frames_skipped = skipped
    return grown

class SlotSource(Source):
    """The consumer side every live source shares: a newest-frame slot (or, with
    ``drop=False``, a bounded queue), the arrival interval, and an explicit end.

    Producers call :meth:`_put` for each frame and :meth:`_finish` at the end of the stream.
    """

    def __init__(self, uri: str, drop: bool = True, capacity: int = 64) -> None:
        super().__init__()
        self.uri, self.live = uri, True
        self.drop = drop
        self.capacity = max(1, capacity)
        self._cond = threading.Condition()
        self._queue: deque[Frame] = deque()
        self.interval: float | None = None  # recent time between frames, seconds
        self._last_arrival: float | None = None
        self._ended = False

    def _put(self, frame: Frame, block: bool = True) -> list[Frame]:
        """Hand ``frame`` to the consumer; returns the frames it replaced (dropped).

        With ``drop=False`` a full queue makes the producer wait (``block``) until the
        consumer takes a frame, so nothing is lost and memory stays bounded.
        """
        with self._cond:
            if not self.drop and block:
                while len(self._queue) >= self.capacity and not self._ended:
                    self._cond.wait(0.1)
            if self._last_arrival is not None:
                gap = frame.captured - self._last_arrival
                self.interval = gap if self.interval is None else 0.9 * self.interval + 0.1 * gap
            self._last_arrival = frame.captured
            self.stats.frames_read += 1
            dropped: list[Frame] = []
            if self.drop and self._queue:
                dropped = list(self._queue)
                self.stats.frames_dropped += len(dropped)
                self._queue.clear()
            self._queue.append(frame)
            self._cond.notify_all()
            return dropped

    def interrupt(self) -> None:
        """The consumer is stopping: a :meth:`read` waiting for a frame returns ``None`` now
        (the pipeline calls this when it stops, so a silent source cannot hold it up)."""
        self._finish()

    def _finish(self) -> None:
        """No more frames will come: wake a waiting reader."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    # ----------------------------------------------------------------- consumer side
    def wait_for_fresh_frame(self) -> None:
        """Return once the newest frame is no older than half the frame interval, waiting
        (at most about half an interval) for the next one when it is older.

        A consumer slower than the source takes frames at moments unrelated to when they
        arrived, so without this a frame would wait half an interval on average (up to a
        whole one) before processing even starts; that wait is part of its latency.
        """
        with self._cond:
            interval = self.interval
            if not self._queue or not interval or not self.drop:
                return  # nothing waiting (read() takes the next arrival), or no rate known
            newest = self._queue[-1]
            age = time.perf_counter() - newest.captured
            if age <= interval / 2:
                return
            deadline = newest.captured + 1.25 * interval  # due by then, with some slack
            while (not self._ended and self._queue and self._queue[-1] is newest
                   and (left := deadline - time.perf_counter()) > 0):
                self._cond.wait(left)

    def read(self) -> Frame | None:
        with self._cond:
            while not self._queue and not self._ended:
                self._cond.wait()
            if not self._queue:
                return None
            frame = self._queue.popleft()
            self._cond.notify_all()  # a producer may wait for room (drop=False)
            return frame


#: A paced source this many seconds behind its clock (the process was stopped, a debugger
#: held it) starts its clock again instead of catching up.
RESTART_AFTER_S = 1.0


class LiveSource(_GrabberNote, SlotSource):
    """A reader thread keeps grabbing; :meth:`read` takes the newest frame.

    Args:
        uri: what the user wrote.
        grabber: the input.
        drop: keep only the newest frame (counting the ones replaced); with ``False`` frames
            queue up (``--no-drop``: nothing is lost, latency may grow).
        pace: deliver this many frames per second (paced synthetic scenes and files read as
            if live) on a fixed clock, as a camera does: a frame produced late is sent at
            once, and the frames due meanwhile are passed over (counted as dropped) where the
            grabber can, else sent at once too (with ``drop=False`` none is passed over: the
            clock starts again from the late frame); ``None`` grabs as fast as the input
            gives them.
        reconnect: after a loss, retry with exponential back-off (0.5 s doubling to 8 s) for
            as long as the source is open. A loss is a closed connection, or a stall: the
            grabber raising :class:`StreamStalled` because a connected stream went silent
            (network grabbers do so after their stall timeout; see
            :class:`~detstream.stream.sources.grabbers.NetworkGrabber`). Stalls are counted in
            ``stats.stalls``; ``stats.outage_seconds`` adds the time from the last frame before
            each loss (for a stall, from when the stream went silent) to the reconnection.
        log: where connection status lines go.
        first_index: the index of the first frame (a resumed run goes on numbering from
            where the interrupted one stopped; a live input cannot skip ahead to it).
    """

    def __init__(self, uri: str, grabber: Any, drop: bool = True, pace: float | None = None,
                 reconnect: bool = True, log: Log | None = None, first_index: int = 0) -> None:
        super().__init__(uri, drop=drop)
        self.grabber = grabber
        self.first_index = first_index
        self.pace = pace
        self.reconnect = reconnect
        self.log = log or (lambda message: None)
        try:  # the first connection must work: an unreachable URI is a user error
            grabber.open()
        except ConnectionError as exc:
            raise UserInputError(f"cannot open {uri} ({exc}); check the address and that the "
                                 "stream or device is up") from None
        self.fps, self.size, self.frames = grabber.fps, grabber.size, grabber.frames
        self.connected = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source:{uri}", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------- reader thread
    def _run(self) -> None:
        index = self.first_index
        next_due = last_frame = time.perf_counter()
        try:
            while not self._stop.is_set():
                try:
                    item = self.grabber.grab()
                except ConnectionError as exc:
                    lost = last_frame  # the last frame before a closed connection
                    if isinstance(exc, StreamStalled):
                        self.stats.stalls += 1
                        lost = time.perf_counter() - exc.silent  # when it went silent
                        reason = f"stalled: {exc}"
                    else:
                        reason = f"connection lost ({exc})" if str(exc) else "connection lost"
                    if not self.reconnect or not self._reconnect(reason, lost):
                        self.stats.error = self.stats.error or f"{self.uri}: {reason}"
                        break
                    continue
                except UserInputError as exc:
                    self.stats.error = str(exc)
                    break
                finally:
                    index += _newly_skipped(self.grabber, self.stats)
                if item is None:
                    break
                missed = 0
                if self.pace:
                    next_due += 1.0 / self.pace
                    late = time.perf_counter() - next_due
                    if late < 0:
                        self._stop.wait(-late)
                    elif late > RESTART_AFTER_S or not self.drop:
                        # a pause, not a slow frame; or nothing may be lost (--no-drop): the
                        # reader waits for the consumer, and the clock starts again after it
                        next_due = time.perf_counter()
                    else:
                        missed = int(late * self.pace)  # frames a camera sent meanwhile
                image, pts, truth = item
                self.size = (image.shape[1], image.shape[0])  # a stream may change size
                last_frame = time.perf_counter()
                self._put(Frame(index, pts, last_frame, image, truth))
                index += 1
                passed = self._pass_over(missed)
                index += passed
                next_due += passed / self.pace if passed else 0.0
        except Exception as exc:  # keep the reason; the pipeline reports it
            self.stats.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._finish()

    def _pass_over(self, frames: int) -> int:
        """A paced source behind its clock: pass over ``frames`` frames, as a camera's newest
        frame replaces those nobody took, where the grabber can do so without producing them
        (a synthetic scene: the world moves on undrawn); they count as dropped. Returns how
        many it passed over. Other grabbers deliver their late frames at once instead, and
        the newest-frame slot drops what the pipeline does not take."""
        skip = getattr(self.grabber, "skip", None)
        passed = 0
        while skip is not None and passed < frames and skip():
            passed += 1
        with self._cond:
            self.stats.frames_dropped += passed
        return passed

    def _reconnect(self, reason: str, lost: float) -> bool:
        """Retry until connected again or stopped; True when connected. The outage counted
        runs from ``lost`` (``perf_counter`` seconds: when frames stopped coming)."""
        self.connected = False
        self.log(f"{self.uri}: {reason}; reconnecting")
        delay = 0.5
        while not self._stop.wait(delay):
            try:
                self.grabber.close()
                self.grabber.open()
            except (ConnectionError, UserInputError) as exc:
                self.log(f"{self.uri}: still unreachable ({exc}); next try in "
                         f"{min(delay * 2, 8.0):.1f} s")
                delay = min(delay * 2, 8.0)
                continue
            self.stats.reconnects += 1
            self.stats.outage_seconds += time.perf_counter() - lost
            self.connected = True
            self.log(f"{self.uri}: reconnected after {time.perf_counter() - lost:.1f} s")
            return True
        self.stats.outage_seconds += time.perf_counter() - lost
        return False

    def close(self) -> None:
        self._stop.set()
        self._finish()  # wake a reader waiting for frames that will not come
        self._thread.join(timeout=5.0)
        self.grabber.close()
