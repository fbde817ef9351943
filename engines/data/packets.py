"""H.264 kept as encoded packets in memory and cut into short MP4 files without re-encoding:
what event clips are made of (a few seconds before an event need the frames of the past, and
encoded packets take about a hundredth of the memory of raw frames).

A clip must start on a keyframe to be decodable, so :class:`PacketEncoder` forces one every
``keyframe_s`` seconds; :class:`ClipFile` remuxes a run of packets that starts on one into a
browser-playable MP4 (``+faststart``: the index first, so a page can play it while it loads).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from detstream.engines.data.video import DEFAULT_PRESET, frame_rate

#: Packet timestamps are kept in milliseconds: live sources drop frames, so a packet's time
#: is its frame's capture time, not its index over a fixed rate.
TIME_BASE = Fraction(1, 1000)


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded frame: ``pts`` in milliseconds on the encoder's clock, whether it is a
    keyframe (a clip may start there), and the H.264 bytes (Annex B, parameter sets repeated
    before every keyframe)."""

    pts: int
    keyframe: bool
    data: bytes


class PacketEncoder:
    """BGR frames to H.264 packets held by the caller.

    x264 runs with ``zerolatency`` (no B-frames, no lookahead): each frame comes back as one
    packet at once, in presentation order, so a packet's time is its frame's time. The
    encoder belongs to an output of FFmpeg's ``null`` format, which discards what it is given
    but fills in the stream's codec parameters; :class:`ClipFile` copies them. Without a
    global header, x264 repeats its parameter sets before every keyframe, so any keyframe
    starts a decodable clip.

    Args:
        width, height: frame size (odd sizes are padded by a pixel, as yuv420p needs).
        fps: the nominal frame rate (the encoder's rate control and keyframe spacing).
        keyframe_s: seconds between forced keyframes: a clip starts at most this much before
            the moment asked for.
        preset, crf: x264 speed and quality.
        threads: encoder threads (1 keeps a clip's cost off the pipeline's other stages).
    """

    def __init__(self, width: int, height: int, fps: float, keyframe_s: float = 1.0,
                 preset: str = DEFAULT_PRESET, crf: int = 23, threads: int = 1) -> None:
        self.width, self.height = int(width), int(height)
        self._pad = (self.height % 2, self.width % 2)
        self._output = av.open(os.devnull, mode="w", format="null")
        rate = frame_rate(fps)
        self.stream = self._output.add_stream(
            "libx264", rate=rate,
            options={"preset": preset, "crf": str(crf), "tune": "zerolatency"})
        self.stream.width = self.width + self._pad[1]
        self.stream.height = self.height + self._pad[0]
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = TIME_BASE
        self.stream.codec_context.gop_size = max(1, round(float(rate) * keyframe_s))
        self.stream.codec_context.thread_count = threads
        self._last_pts = -1
        self._closed = False

    def encode(self, image: np.ndarray, time_s: float) -> list[EncodedFrame]:
        """Encode ``image`` (uint8 [H, W, 3] BGR) shown at ``time_s`` seconds; times that
        do not increase are nudged a millisecond past the last."""
        if image.shape != (self.height, self.width, 3):
            raise ValueError(f"PacketEncoder: expected a frame of shape "
                             f"{(self.height, self.width, 3)}, got {image.shape}")
        if any(self._pad):
            image = np.pad(image, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self._last_pts = max(self._last_pts + 1, round(time_s * 1000))
        frame.time_base = TIME_BASE
        return self._keep(self.stream.encode(frame))

    def _keep(self, packets: list[av.Packet]) -> list[EncodedFrame]:
        kept = []
        for packet in packets:
            self._output.mux(packet)  # the null format discards it; see the class doc
            kept.append(EncodedFrame(int(packet.pts), bool(packet.is_keyframe), bytes(packet)))
        return kept

    def close(self) -> list[EncodedFrame]:
        """Flush the encoder (zerolatency holds nothing back, but a flush is the contract)
        and release it; returns any last packets."""
        if self._closed:
            return []
        self._closed = True
        try:
            return self._keep(self.stream.encode(None))
        finally:
            self._output.close()


class ClipFile:
    """An MP4 made of a :class:`PacketEncoder`'s packets, unchanged. The first packet
    written must be a keyframe; timestamps start at zero from it."""

    def __init__(self, path: str | Path, encoder: PacketEncoder) -> None:
        self.path = Path(path)
        self._container = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream_from_template(encoder.stream)
        self._stream.time_base = TIME_BASE
        self._start: int | None = None
        self.frames = 0
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self._closed = False

    def write(self, frame: EncodedFrame) -> None:
        """Add one packet (the first must be a keyframe)."""
        if self._start is None:
            if not frame.keyframe:
                raise ValueError("a clip must start on a keyframe")
            self._start = self.first_pts = frame.pts
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = frame.pts - self._start
        packet.time_base = TIME_BASE
        packet.is_keyframe = frame.keyframe
        packet.stream = self._stream
        self._container.mux(packet)
        self.last_pts = frame.pts
        self.frames += 1

    @property
    def seconds(self) -> float:
        """From the first frame's time to the last's."""
        if self.first_pts is None or self.last_pts is None:
            return 0.0
        return (self.last_pts - self.first_pts) / 1000.0

    def close(self) -> None:
        """Finalise the file (safe to call twice)."""
        if not self._closed:
            self._closed = True
            self._container.close()
