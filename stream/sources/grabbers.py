"""Grabbers: one per kind of input (see :mod:`detstream.stream.sources.reader` for the protocol)."""

from __future__ import annotations

import glob as globbing
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from detstream.engines.data.video import frame_to_bgr, hardware_decoder
from detstream.engines.errors import UserInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
Grab = tuple[np.ndarray, float | None, object] | None


class StreamStalled(ConnectionError):
    """A connected stream sent no frame for longer than its stall timeout.

    Attributes:
        silent: seconds the stream had been silent when the stall was noticed.
    """

    def __init__(self, message: str, silent: float) -> None:
        super().__init__(message)
        self.silent = silent


class VideoFileGrabber:
    """Decode a video file (or a finite HTTP video) with PyAV, frame by frame, as BGR.

    Packets are demuxed and decoded one at a time, so a damaged stretch of the file costs only
    its own frames: a packet the decoder rejects, and a frame FFmpeg flags as corrupt (decoded
    with errors concealed), are passed over and counted in :attr:`skipped`. Frames decoded
    from a damaged reference without a flag cannot be told apart and are delivered. Only
    ``MAX_BAD_RUN`` damaged frames in a row end the file, so garbage is not decoded forever.

    Attributes:
        skipped: damaged frames passed over since the grabber was created (all passes).
        note: what the user should know once the file has ended (truncation, damage).
    """

    MAX_BAD_RUN = 100
    skip_corrupt = True  # a frame with concealed errors is passed over (files)

    def __init__(self, path: str, network: bool = False, timeout: float = 10.0,
                 decoder: str = "auto") -> None:
        self.path = path
        self.network = network
        self.timeout = timeout
        self.decoder = decoder
        self.hardware = False  # NVDEC decodes the stream (known once it is open)
        self.fps: float | None = None
        self.size: tuple[int, int] | None = None
        self.frames: int | None = None
        self.container = None
        self.decoded = 0
        self.skipped = 0
        self.note: str | None = None
        self._bad_run = 0
        self._seen = 0  # frames of this pass, good or damaged
        self._ready: deque = deque()

    def open(self) -> None:
        import av

        if not self.network and not Path(self.path).is_file():
            raise UserInputError(f"video file {self.path} does not exist")
        try:
            self.container = av.open(self.path, timeout=self.timeout if self.network else None,
                                     hwaccel=hardware_decoder(self.decoder))
        except av.error.FFmpegError as exc:
            if self.network:
                raise ConnectionError(str(exc)) from None
            raise UserInputError(f"{self.path} is not a readable video ({exc}); check the file "
                                 "or re-encode it") from None
        self._use_first_video_stream()

    def _use_first_video_stream(self) -> None:
        """Decode the container's first video stream; read its rate, length and size."""
        if not self.container.streams.video:
            self.container.close()
            raise UserInputError(f"{self.path} has no video stream")
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads inside FFmpeg, GIL released
        self.hardware = bool(getattr(stream.codec_context, "is_hwaccel", False))
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.frames = int(stream.frames) or None
        self.size = (stream.codec_context.width, stream.codec_context.height)
        self._stream = stream
        # Every stream's packets: a live stream whose audio flows while its video is stuck
        # still returns here, where the stall check sees it (see NetworkGrabber).
        self._packets = self.container.demux()
        self._ready.clear()
        self.decoded = self._seen = self._bad_run = 0

    def rewind(self) -> bool:
        """Back to the first frame without reopening; False when it cannot (a live stream).

        A looping file keeps its container, decoder and FFmpeg's decoder threads: reopening
        them on every pass cost resident memory each time (new threads, new heaps).
        """
        import av

        if self.network or self.container is None:
            return False
        try:
            self.container.seek(0)  # the keyframe at or before the start
            self._stream.codec_context.flush_buffers()  # leave the drained end-of-file state
        except (av.error.FFmpegError, AttributeError):
            return False
        self._packets = self.container.demux()
        self._ready.clear()
        self.decoded = self._seen = self._bad_run = 0
        return True

    def grab(self) -> Grab:
        frame = self._next_frame()
        if frame is None:
            self._ended()
            return None
        self.decoded += 1
        pts = float(frame.time) if frame.time is not None else None
        return frame_to_bgr(frame), pts, None

    def _next_frame(self):
        """The next good decoded frame, ``None`` at the end of the stream."""
        import av

        while not self._ready:
            self._check_progress()
            try:
                packet = next(self._packets, None)
            except av.error.FFmpegError as exc:
                raise self._read_error(exc) from None
            if packet is None:
                return None
            if packet.stream.index != self._stream.index:
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:  # this packet only: skip it, go on
                self._damaged(exc)
                continue
            for frame in frames:
                if frame.is_corrupt and self.skip_corrupt:
                    self._damaged("decoded with errors")
                else:
                    self._seen += 1
                    self._bad_run = 0
                    self._ready.append(frame)
        return self._ready.popleft()

    def _check_progress(self) -> None:
        """Called before each packet is read (live streams check for a stall here)."""
        return None

    def _damaged(self, reason) -> None:
        """One frame could not be decoded: count it; give up after too many in a row."""
        self.skipped += 1
        self._seen += 1
        self._bad_run += 1
        if self._bad_run >= self.MAX_BAD_RUN:
            raise self._read_error(f"{self.MAX_BAD_RUN} frames in a row could not be decoded, "
                                   f"the last: {reason}")

    def _read_error(self, reason) -> Exception:
        """The exception that ends reading: a damaged file, or a lost network stream."""
        if self.network:
            return ConnectionError(str(reason))
        return UserInputError(f"{self.path} is damaged after frame {self.decoded} ({reason}); "
                              "the frames before it were processed")

    def _ended(self) -> None:
        """The file ended: note a truncation and the damaged frames passed over."""
        notes = []
        if self.frames and self._seen < self.frames:
            notes.append(f"{self.path} ended after {self._seen} of its {self.frames} frames "
                         "(the file looks truncated)")
        if self.skipped:
            notes.append(f"{self.path}: skipped {self.skipped} damaged frame(s) (undecodable, "
                         "or decoded with errors)")
        self.note = "; ".join(notes) or None

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


class NetworkGrabber(VideoFileGrabber):
    """A live network stream (RTSP, RTMP, HTTP MJPEG, HLS): the end of data is a loss.

    A stream that stops sending without closing the connection (a stall) is noticed after
    ``timeout`` seconds and raises :class:`StreamStalled`, in two ways: FFmpeg's own read is
    interrupted when no data came for that long (PyAV's interrupt callback; FFmpeg's RTSP
    demuxer gives up only on the second timed-out read in a row, so RTSP reads get half the
    time), and data that arrives but yields no frame is checked against the time the frame was
    asked for. Frames with concealed errors are delivered: a live picture with a smeared patch is
    better than none.
    """

    skip_corrupt = False

    def __init__(self, url: str, timeout: float = 5.0, decoder: str = "auto") -> None:
        super().__init__(url, network=True, timeout=timeout, decoder=decoder)
        self._waiting_since = time.monotonic()

    def open(self) -> None:
        import av

        rtsp = self.path.startswith("rtsp")
        options = {"rtsp_transport": "tcp"} if rtsp else {}
        read_timeout = self.timeout / 2 if rtsp else self.timeout
        try:
            self.container = av.open(self.path, options=options,
                                     timeout=(self.timeout, read_timeout),
                                     hwaccel=hardware_decoder(self.decoder))
        except av.error.ExitError:  # our open timeout interrupted FFmpeg
            raise ConnectionError(f"no answer within {self.timeout:g} s") from None
        except (av.error.FFmpegError, OSError) as exc:
            raise ConnectionError(str(exc).splitlines()[0] if str(exc) else "no answer") \
                from None
        self._use_first_video_stream()
        self.frames = None  # a live stream has no length
        self.size = None  # known from the first decoded frame

    def grab(self) -> Grab:
        # Silence counts from here: time the caller spent elsewhere (pacing, a full queue)
        # between two frames is not the stream's.
        self._waiting_since = time.monotonic()
        item = super().grab()
        if item is None:  # a live stream does not end: the server went away
            raise ConnectionError("the stream stopped")
        image = item[0]
        self.size = (image.shape[1], image.shape[0])
        return item

    def _check_progress(self) -> None:
        silent = time.monotonic() - self._waiting_since
        if silent > self.timeout:
            raise StreamStalled(f"no frame for {silent:.1f} s", silent)

    def _read_error(self, reason) -> Exception:
        import av

        if isinstance(reason, av.error.ExitError):  # our read timeout interrupted FFmpeg
            return StreamStalled(f"nothing received for {self.timeout:g} s", self.timeout)
        return super()._read_error(reason)

    def _ended(self) -> None:
        return None


class CameraGrabber:
    """A local camera through OpenCV (V4L2 on Linux)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.capture: cv2.VideoCapture | None = None
        self.fps: float | None = None
        self.size: tuple[int, int] | None = None
        self.frames = None

    def open(self) -> None:
        present = sorted(p.name for p in Path("/dev").glob("video*"))
        missing = Path("/dev").is_dir() and f"video{self.index}" not in present
        capture = None
        if not missing:
            level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            try:
                capture = cv2.VideoCapture(self.index)
            finally:
                cv2.utils.logging.setLogLevel(level)
        if capture is None or not capture.isOpened():
            if capture is not None:
                capture.release()
            found = ", ".join(present) if present else "none"
            raise UserInputError(f"camera {self.index} cannot be opened (cameras here: {found})")
        self.capture = capture
        self.fps = capture.get(cv2.CAP_PROP_FPS) or None
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def grab(self) -> Grab:
        ok, image = self.capture.read()
        if not ok:
            raise ConnectionError(f"camera {self.index} stopped delivering frames")
        return image, None, None

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


class ImageGrabber:
    """Images from a folder (sorted by name), a glob pattern or a single file.

    An image that cannot be read is skipped with a warning naming it (through ``log``) and
    counted in :attr:`skipped`; the run goes on with the next one.
    """

    def __init__(self, pattern: str, log: Callable[[str], None] | None = None) -> None:
        self.pattern = pattern
        self.log = log or (lambda message: None)
        self.skipped = 0
        self.note: str | None = None
        self.fps: float | None = None
        self.size: tuple[int, int] | None = None
        self.frames: int | None = None
        self.files: list[Path] = []
        self._position = 0

    def open(self) -> None:
        path = Path(self.pattern)
        if path.is_dir():
            files = [p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.is_file():
            files = [path]
        else:
            files = [Path(p) for p in sorted(globbing.glob(self.pattern))
                     if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise UserInputError(f"no images found at {self.pattern} (expected .jpg, .png, ...)")
        self.files = files
        self.frames = len(files)
        self._position = 0

    def seek_frame(self, position: int) -> bool:
        """The next :meth:`grab` reads image ``position`` (0-based) of the sorted list; an
        unreadable image keeps its position, so this is the frame reading would reach."""
        if not 0 <= position <= len(self.files):
            return False
        self._position = position
        return True

    def grab(self) -> Grab:
        while self._position < len(self.files):
            path = self.files[self._position]
            self._position += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image, None, None
            self.skipped += 1
            self.log(f"warning: skipping {path}: not a readable image")
            self.note = (f"{self.skipped} unreadable image(s) skipped (the last: {path}); "
                         "remove or replace them")
        return None

    def close(self) -> None:
        return None


class SyntheticGrabber:
    """Frames of a synthetic scene with their ground truth.

    :meth:`skip` moves the scene on by a frame without drawing it: a paced scene that fell
    behind its clock passes over the frames a camera would have sent meanwhile.
    """

    def __init__(self, config) -> None:
        self.config = config
        self.fps = float(config.fps)
        self.size = (config.width, config.height)
        self.frames = config.frames
        self._world = None
        self._renderer = None
        self._index = 0

    def open(self) -> None:
        from detstream.engines.data.synthetic.render import Renderer
        from detstream.engines.data.synthetic.world import World

        self._world = World(self.config)
        self._renderer = Renderer(self._world)
        self._index = 0

    def _ended(self) -> bool:
        return self.frames is not None and self._index >= self.frames

    def grab(self) -> Grab:
        if self._ended():
            return None
        rendered = self._renderer.render(self._world.step())
        pts = self._index / self.fps
        self._index += 1
        return rendered.image, pts, rendered.truth

    def skip(self) -> bool:
        """Pass over the next frame (the world moves, nothing is drawn); False at the end."""
        if self._ended():
            return False
        self._world.step()
        self._index += 1
        return True

    def close(self) -> None:
        self._world = self._renderer = None


__all__ = ["CameraGrabber", "ImageGrabber", "NetworkGrabber", "SyntheticGrabber",
           "VideoFileGrabber"]
