"""An OpenCV window; q or Esc stops the run."""

from __future__ import annotations

import cv2

from detstream.engines.errors import UserInputError
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import Sink, StopRequested


class DisplaySink(Sink):
    """Show annotated frames in a window named after the source."""

    name = "display"

    def __init__(self, title: str = "detstream") -> None:
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
