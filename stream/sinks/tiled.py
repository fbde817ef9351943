"""Several streams in one picture: a grid of every stream's newest annotated frame, written to
one video file and/or shown in one window.

Each stream's pipeline writes to its own :meth:`TiledView.sink`; the lowest-numbered stream
still open paces the view (each of its frames makes one tiled frame), so the tiled video has
that stream's frame rate and the others show their newest frame at that moment. The grid is
sized for the streams the view was made for; streams added later beyond that are not shown.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from detstream.engines.data.video import DEFAULT_PRESET, VideoWriter
from detstream.engines.errors import UserInputError
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.run_config import RUN_OPTIONS
from detstream.stream.sinks.base import Sink, StopRequested
from detstream.stream.sinks.display import require_display

#: Default size of one tile (16:9).
TILE = (640, 360)


def grid_shape(streams: int) -> tuple[int, int]:
    """(rows, columns) of the most square grid that holds ``streams`` tiles."""
    columns = max(1, math.ceil(math.sqrt(streams)))
    return max(1, math.ceil(streams / columns)), columns


def fit_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height``, centred on black (aspect kept)."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    tile = np.zeros((height, width, 3), np.uint8)
    x, y = (width - new_w) // 2, (height - new_h) // 2
    tile[y:y + new_h, x:x + new_w] = cv2.resize(image, (new_w, new_h),
                                                interpolation=cv2.INTER_AREA)
    return tile


class TiledView:
    """The grid of ``streams`` streams.

    Args:
        streams: tiles in the grid.
        path: a video file to write the grid to (H.264 .mp4/.mkv/.mov), or ``None``.
        show: show the grid in an OpenCV window (q or Esc stops the run).
        fps: frame rate of the tiled video (may be set until the first frame comes).
        tile: (width, height) of one tile.
        fragmented: write fragmented MP4 (live and endless runs).
        on_quit: called when q or Esc is pressed in the window (every stream should stop).
    """

    def __init__(self, streams: int, path: str | Path | None = None, show: bool = False,
                 fps: float = 30.0, tile: tuple[int, int] = TILE,
                 fragmented: bool = False,
                 on_quit: Callable[[], None] | None = None,
                 preset: str = DEFAULT_PRESET) -> None:
        if path is not None:  # the same video files as a run's --output
            RUN_OPTIONS["output"].check(path, "--output-tiled")
        if show:
            require_display()
        self.streams = max(1, streams)
        self.path = Path(path) if path is not None else None
        self.show = show
        self.fps = fps
        self.fragmented = fragmented
        self.preset = preset
        self.on_quit = on_quit
        self.tile = tile
        self.rows, self.columns = grid_shape(self.streams)
        self.frames = 0
        self._canvas = np.zeros((self.rows * tile[1], self.columns * tile[0], 3), np.uint8)
        self._open: set[int] = set()
        self._lock = threading.Lock()
        self._writer: VideoWriter | None = None
        self._window = False

    def sink(self, stream: int) -> Sink:
        """The output that stream ``stream``'s pipeline writes to."""
        with self._lock:
            self._open.add(stream)
        return _TileSink(self, stream)

    def _put(self, stream: int, image: np.ndarray) -> None:
        if not 0 <= stream < self.streams:
            return
        row, column = divmod(stream, self.columns)
        width, height = self.tile
        tile = fit_into(image, width, height)
        # bottom left: the drawn frame's FPS/latency overlay is at the top left
        cv2.putText(tile, str(stream), (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                    (255, 255, 255), 2, cv2.LINE_AA)
        with self._lock:
            self._canvas[row * height:(row + 1) * height,
                         column * width:(column + 1) * width] = tile
            pacing = stream == min(self._open, default=stream)
            if pacing:
                self._emit()

    def _emit(self) -> None:
        """Write and show the grid as it stands (called with the lock held)."""
        if self.path is not None:
            if self._writer is None:
                self._writer = VideoWriter(self.path, self._canvas.shape[1],
                                           self._canvas.shape[0], self.fps,
                                           fragmented=self.fragmented, preset=self.preset)
            self._writer.write(self._canvas)
        self.frames += 1
        if self.show:
            try:
                cv2.imshow("detstream: tiled", self._canvas)
            except cv2.error as exc:
                raise UserInputError("--show needs a display (this OpenCV or machine has none: "
                                     f"{str(exc).splitlines()[-1].strip()}); drop --show"
                                     ) from None
            self._window = True
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                if self.on_quit is not None:
                    self.on_quit()
                raise StopRequested("window closed with q/Esc")

    def _closed(self, stream: int) -> None:
        with self._lock:
            self._open.discard(stream)

    def close(self) -> None:
        """Finalise the video and close the window."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._window:
                cv2.destroyWindow("detstream: tiled")
                self._window = False


class _TileSink(Sink):
    """One stream's way into a :class:`TiledView`."""

    name = "tiled"
    label = "tiled output"
    shows_frames = True

    def __init__(self, view: TiledView, stream: int) -> None:
        self.view = view
        self.stream = stream
        self.path = view.path

    def write(self, packet: FramePacket) -> None:
        image = packet.annotated if packet.annotated is not None else packet.image
        self.view._put(self.stream, image)

    def close(self) -> None:
        self.view._closed(self.stream)
