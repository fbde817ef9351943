"""The sink interface: consume packets in order, then close (finalising files)."""

from __future__ import annotations

import errno
import time
from abc import ABC, abstractmethod
from pathlib import Path

from detstream.engines.errors import DetstreamError
from detstream.stream.pipeline.packet import FramePacket

#: Seconds between checks that a file output is still where it was created.
PRESENCE_CHECK = 1.0


class StopRequested(Exception):
    """Raised by a sink when the user asked to stop (a window's q or Esc key)."""


class OutputError(DetstreamError):
    """An output could not be written (a full disk, a removed folder): names the output."""

    def __init__(self, sink: Sink, error: BaseException) -> None:
        code = getattr(error, "errno", None)
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        if code == errno.ENOSPC:
            fix = "free some space or write it to another disk"
        elif code == errno.ENOENT:
            fix = "its folder was removed while running; keep the folder or write elsewhere"
        elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = "write it to a folder you can write to"
        else:
            fix = "check the disk and the folder"
        super().__init__(f"cannot write the {sink.describe()}: {reason}; {fix}")
        self.sink = sink


class Sink(ABC):
    """Where results go. ``write`` is called from one thread, in frame order.

    Attributes:
        name: short name (``video``, ``jsonl`` ...).
        label: what the output is, for messages.
        path: the file written, for file outputs.
        shows_frames: it writes or shows the drawn frame (``packet.annotated``), so the
            pipeline must draw.
    """

    name: str
    label: str = "output"
    path: Path | None = None
    shows_frames: bool = False

    def describe(self) -> str:
        return f"{self.label} {self.path}" if self.path is not None else self.label

    @abstractmethod
    def write(self, packet: FramePacket) -> None:
        """Consume one packet (its ``detections`` and, for video sinks, ``annotated``)."""

    def flush(self) -> None:
        """Hand what was written so far to the operating system (file outputs), so that a
        killed process leaves it on disk; outputs that buffer nothing do nothing."""
        return None

    def close(self) -> None:
        """Flush and finalise; safe to call twice and after errors."""
        return None

    def report(self) -> dict | None:
        """What the output did, for the run's statistics under its ``name`` (``None``:
        nothing to say)."""
        return None


class FileSink(Sink):
    """A sink writing one file, which notices when the file disappears under it.

    On Linux a file removed while open (its folder deleted, say) keeps accepting writes that
    land nowhere; the run would end with nothing on disk and no word said. Once a second this
    checks the path is still there and raises ``FileNotFoundError`` when it is not.
    """

    def _check_present(self) -> None:
        now = time.monotonic()
        if now - getattr(self, "_checked", 0.0) < PRESENCE_CHECK:
            return
        self._checked = now
        if self.path is None:
            return
        if self.path.exists():
            self._existed = True  # an encoder may create its file only after a few frames
        elif getattr(self, "_existed", False):
            raise FileNotFoundError(errno.ENOENT, "the file is gone", str(self.path))
