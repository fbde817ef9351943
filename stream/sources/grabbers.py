"""Grabbers: one per kind of input (see :mod:`stream.sources.reader` for the protocol)."""

from __future__ import annotations

import glob as globbing
from pathlib import Path

import cv2
import numpy as np

from engines.errors import UserInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
Grab = tuple[np.ndarray, float | None, object] | None


class VideoFileGrabber:
    """Decode a video file (or a finite HTTP video) with PyAV, frame by frame, as BGR."""

    def __init__(self, path: str, network: bool = False, timeout: float = 10.0) -> None:
        self.path = path
        self.network = network
        self.timeout = timeout
        self.fps: float | None = None
        self.size: tuple[int, int] | None = None
        self.frames: int | None = None
        self.container = None
        self.decoded = 0
        self.note: str | None = None

    def open(self) -> None:
        import av

        if not self.network and not Path(self.path).is_file():
            raise UserInputError(f"video file {self.path} does not exist")
        try:
            self.container = av.open(self.path, timeout=self.timeout if self.network else None)
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
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.frames = int(stream.frames) or None
        self.size = (stream.codec_context.width, stream.codec_context.height)
        self._decoder = self.container.decode(stream)

    def grab(self) -> Grab:
        import av

        try:
            frame = next(self._decoder)
        except StopIteration:
            if self.frames and self.decoded < self.frames:
                self.note = (f"{self.path} ended after {self.decoded} of its {self.frames} "
                             "frames (the file looks truncated)")
            return None
        except av.error.FFmpegError as exc:
            if self.network:
                raise ConnectionError(str(exc)) from None
            raise UserInputError(f"{self.path} is damaged after frame {self.decoded} ({exc}); "
                                 "the frames before it were processed") from None
        self.decoded += 1
        pts = float(frame.time) if frame.time is not None else None
        return frame.to_ndarray(format="bgr24"), pts, None

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


class NetworkGrabber(VideoFileGrabber):
    """A live network stream (RTSP, RTMP, HTTP MJPEG, HLS): the end of data is a loss."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        super().__init__(url, network=True, timeout=timeout)

    def open(self) -> None:
        import av

        options = {"rtsp_transport": "tcp"} if self.path.startswith("rtsp") else {}
        try:
            self.container = av.open(self.path, options=options, timeout=self.timeout)
        except (av.error.FFmpegError, OSError) as exc:
            raise ConnectionError(str(exc).splitlines()[0] if str(exc) else "no answer") \
                from None
        self._use_first_video_stream()
        self.frames = None  # a live stream has no length
        self.size = None  # known from the first decoded frame

    def grab(self) -> Grab:
        item = super().grab()
        if item is None:  # a live stream does not end: the server went away
            raise ConnectionError("the stream stopped")
        image = item[0]
        self.size = (image.shape[1], image.shape[0])
        return item


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
    """Images from a folder (sorted by name), a glob pattern or a single file."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
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

    def grab(self) -> Grab:
        if self._position >= len(self.files):
            return None
        path = self.files[self._position]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise UserInputError(f"image {path} cannot be read; remove or replace it")
        self._position += 1
        return image, None, None

    def close(self) -> None:
        return None


class SyntheticGrabber:
    """Frames of a synthetic scene with their ground truth."""

    def __init__(self, config) -> None:
        self.config = config
        self.fps = float(config.fps)
        self.size = (config.width, config.height)
        self.frames = config.frames
        self._frames = None
        self._index = 0

    def open(self) -> None:
        from engines.data.synthetic import SyntheticScene

        self._frames = iter(SyntheticScene(self.config))
        self._index = 0

    def grab(self) -> Grab:
        item = next(self._frames, None)
        if item is None:
            return None
        image, truth = item
        pts = self._index / self.fps
        self._index += 1
        return image, pts, truth

    def close(self) -> None:
        self._frames = None


__all__ = ["CameraGrabber", "ImageGrabber", "NetworkGrabber", "SyntheticGrabber",
           "VideoFileGrabber"]
