"""The sink interface: consume packets in order, then close (finalising files)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from stream.pipeline.packet import FramePacket


class StopRequested(Exception):
    """Raised by a sink when the user asked to stop (a window's q or Esc key)."""


class Sink(ABC):
    """Where results go. ``write`` is called from one thread, in frame order."""

    name: str

    @abstractmethod
    def write(self, packet: FramePacket) -> None:
        """Consume one packet (its ``detections`` and, for video sinks, ``annotated``)."""

    def close(self) -> None:
        """Flush and finalise; safe to call twice and after errors."""
        return None
