"""A short account of a run, kept as it goes: frames, boxes and tracks per class, and the
longest tracks. What the demo shows under an uploaded video; equal to what the JSON Lines
output says, frame by frame."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from stream.pipeline.packet import FramePacket
from stream.sinks.base import Sink


@dataclass
class _Track:
    class_name: str
    first: int
    last: int
    frames: int = 0


@dataclass
class SummarySink(Sink):
    """Tally the reported detections of every frame.

    Attributes:
        frames: frames written.
        boxes: reported boxes per class name, over all frames.
        tracks: per track id, its class (the first one reported), first and last frame and
            the number of frames it was reported in.
    """

    name = "summary"
    frames: int = 0
    boxes: Counter = field(default_factory=Counter)
    tracks: dict[int, _Track] = field(default_factory=dict)

    def write(self, packet: FramePacket) -> None:
        self.frames += 1
        dets = packet.detections
        if dets is None or not len(dets):
            return
        labels = dets.labels
        self.boxes.update(labels)
        for label, track_id in zip(labels, dets.track_ids.tolist(), strict=True):
            if track_id < 0:
                continue
            track = self.tracks.get(track_id)
            if track is None:
                track = self.tracks[track_id] = _Track(label, packet.index, packet.index)
            track.last = packet.index
            track.frames += 1

    def report(self, longest: int = 5) -> dict:
        """``frames``, ``boxes`` and ``tracks`` per class, ``track_count`` and the
        ``longest`` tracks (id, class, frames reported, first and last frame)."""
        per_class = Counter(track.class_name for track in self.tracks.values())
        ranked = sorted(self.tracks.items(), key=lambda item: (-item[1].frames, item[0]))
        return {
            "frames": self.frames,
            "boxes": dict(sorted(self.boxes.items())),
            "tracks": dict(sorted(per_class.items())),
            "track_count": len(self.tracks),
            "longest": [{"id": tid, "class": t.class_name, "frames": t.frames,
                         "first": t.first, "last": t.last} for tid, t in ranked[:longest]],
        }
