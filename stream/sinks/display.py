"""An OpenCV window; q or Esc stops the run."""

from __future__ import annotations

import os
import sys

import cv2

from detstream.engines.errors import UserInputError
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import Sink, StopRequested


def require_display() -> None:
    """Refuse ``--show`` at once on a Linux machine without a window system. OpenCV's GUI
    would otherwise abort the whole process (Qt: "could not connect to display") when the
    first frame is shown, mid-run and with no chance to finalise the outputs."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise UserInputError("--show needs a display, and this machine has none (DISPLAY is "
                             "not set); drop --show and write --output FILE instead")


class DisplaySink(Sink):
    """Show annotated frames in a window named after the source."""

    name = "display"
    shows_frames = True

    def __init__(self, title: str = "detstream") -> None:
        require_display()
        self.title = title
        self._open = False

    def write(self, packet: FramePacket) -> None:
        image = packet.annotated if packet.annotated is not None else packet.image
        try:
            cv2.imshow(self.title, image)
        except cv2.error as exc:
            raise UserInputError("--show needs a display (this OpenCV or machine has none: "
                                 f"{str(exc).splitlines()[-1].strip()}); drop --show") from None
        self._open = True
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise StopRequested("window closed with q/Esc")

    def close(self) -> None:
        if self._open:
            cv2.destroyWindow(self.title)
            self._open = False
