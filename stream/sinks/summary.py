"""A short account of a run, kept as it goes: frames, boxes and tracks per class, and the
longest tracks. What the demo shows under an uploaded video; equal to what the JSON Lines
output says, frame by frame."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import Sink


@dataclass
class _Track:
    class_name: str
    first: int
    last: int
    frames: int = 0


#: A track not reported for this many frames has ended: it is folded into the totals.
ENDED_AFTER = 1000
#: Longest ended tracks kept for the report.
LONGEST_KEPT = 20


@dataclass
class SummarySink(Sink):
    """Tally the reported detections of every frame, in bounded memory: tracks not reported
    for :data:`ENDED_AFTER` frames are folded into per-class totals and a short list of the
    longest, so a stream running for days keeps only its recent tracks.

    Attributes:
        frames: frames written.
        boxes: reported boxes per class name, over all frames.
        tracks: per recent track id, its class (the first one reported), first and last frame
            and the number of frames it was reported in.
    """

    name = "summary"
    frames: int = 0
    boxes: Counter = field(default_factory=Counter)
    tracks: dict[int, _Track] = field(default_factory=dict)
    ended_per_class: Counter = field(default_factory=Counter)
    ended_longest: list[tuple[int, _Track]] = field(default_factory=list)

    def _fold_ended(self, index: int) -> None:
        ended = [tid for tid, t in self.tracks.items() if index - t.last > ENDED_AFTER]
        for tid in ended:
            track = self.tracks.pop(tid)
            self.ended_per_class[track.class_name] += 1
            self.ended_longest.append((tid, track))
        if ended:
            self.ended_longest.sort(key=lambda item: (-item[1].frames, item[0]))
            del self.ended_longest[LONGEST_KEPT:]

    def write(self, packet: FramePacket) -> None:
        self.frames += 1
        if self.frames % 100 == 0:
            self._fold_ended(packet.index)
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
        per_class.update(self.ended_per_class)
        ranked = sorted([*self.tracks.items(), *self.ended_longest],
                        key=lambda item: (-item[1].frames, item[0]))
        return {
            "frames": self.frames,
            "boxes": dict(sorted(self.boxes.items())),
            "tracks": dict(sorted(per_class.items())),
            "track_count": sum(per_class.values()),
            "longest": [{"id": tid, "class": t.class_name, "frames": t.frames,
                         "first": t.first, "last": t.last} for tid, t in ranked[:longest]],
        }
