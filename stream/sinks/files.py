"""File sinks: annotated H.264 video, JSON Lines and MOTChallenge results."""

from __future__ import annotations

import json
from pathlib import Path

from detstream.engines.data.mot import MotWriter
from detstream.engines.data.video import DEFAULT_PRESET, VideoWriter
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.serialize import detections_to_json
from detstream.stream.sinks.base import FileSink


class VideoSink(FileSink):
    """Annotated frames to a browser-playable H.264 file (PyAV), finalised on close even
    after an interruption. The writer opens on the first frame (its size decides)."""

    name = "video"
    label = "video output"
    shows_frames = True

    def __init__(self, path: str | Path, fps: float, threads: int = 0,
                 preset: str = DEFAULT_PRESET, tune: str | None = None,
                 fragmented: bool = False) -> None:
        self.path = Path(path)
        self.fps = fps
        self.threads = threads
        self.preset = preset
        self.tune = tune
        self.fragmented = fragmented
        self.frames = 0
        self._writer: VideoWriter | None = None

    def write(self, packet: FramePacket) -> None:
        image = packet.annotated if packet.annotated is not None else packet.image
        if self._writer is None:
            h, w = image.shape[:2]
            self._writer = VideoWriter(self.path, w, h, self.fps, preset=self.preset,
                                       threads=self.threads, tune=self.tune,
                                       fragmented=self.fragmented)
        self._writer.write(image)
        self.frames += 1
        self._check_present()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class JsonlSink(FileSink):
    """One JSON object per frame: ``frame``, ``time``, ``stream``, ``detections`` (each with
    ``box`` [x1, y1, x2, y2] in pixels, ``score``, ``class_id``, ``class`` and ``track_id``;
    ``coasted``: true on a box the tracker reports where it predicts an unseen object; see
    :func:`~detstream.stream.serialize.detections_to_json`) and ``events`` (tracks that
    ``started``, were ``lost``, ``recovered`` or ``ended`` on this frame: ``event``,
    ``track_id``, ``class_id``, ``class``; then the counting lines' and watched areas'
    ``line_crossed``, ``zone_entered``, ``zone_left`` and ``dwell_exceeded``, with ``rule``,
    ``frame``, ``time`` and ``direction`` or ``dwell_s``: see
    :class:`~detstream.stream.analytics.RuleEvent`)."""

    name = "jsonl"
    label = "JSON Lines output"

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self._file = self.path.open("a" if append else "w", encoding="utf-8")

    def write(self, packet: FramePacket) -> None:
        dets = packet.detections
        items = detections_to_json(dets)
        names = dets.class_names if dets is not None else ()
        events = [{**e.to_dict(), "class": names[e.class_id] if 0 <= e.class_id < len(names)
                   else str(e.class_id)} for e in packet.events]
        record = {"frame": packet.index, "time": packet.pts, "stream": packet.stream_id,
                  "detections": items, "events": events}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._check_present()

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class MotSink(FileSink):
    """MOTChallenge tracker results (1-based frames): ``frame,id,x,y,w,h,score,-1,-1,-1``."""

    name = "mot"
    label = "MOT output"

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self._writer = MotWriter(path, append=append)
        self._closed = False

    def write(self, packet: FramePacket) -> None:
        if packet.detections is not None:
            tracked = packet.detections[packet.detections.track_ids >= 0]
            self._writer.write(packet.index + 1, tracked)
        self._check_present()

    def flush(self) -> None:
        if not self._closed:
            self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True
