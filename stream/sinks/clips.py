"""Event clips (``--clips DIR --pre S --post S``): an H.264 MP4 of the drawn video around each
counting-line crossing, area entry or exit and loitering, from ``pre`` seconds before the
event to ``post`` seconds after it.

Every drawn frame is encoded once, as it passes (:class:`PacketEncoder`, a keyframe each
second), and the last ``pre`` seconds of packets (:data:`DATED_BACK_S` more, for events
dated before the frame that reports them) are kept in a ring: about 1 MB at 640x480, where
the raw frames would take 130 MB. An event opens a clip from the newest keyframe at least
``pre`` seconds before it (so it plays from its first frame), the ring's packets go in
unchanged, then each new frame's, until ``post`` seconds after the event. Later events of
the same track while its clip is open extend that clip instead of opening another. A clip
still open when the run ends is finalised where the video ends, and stays playable.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from detstream.engines.data.packets import ClipFile, EncodedFrame, PacketEncoder
from detstream.stream.analytics.events import RuleEvent
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import Sink

#: Clips being written at once; events beyond that get no clip (counted as skipped).
MAX_OPEN = 16
#: A clip extended by one event after another ends this long after it began; the track's
#: next event then starts a new one.
MAX_CLIP_S = 120.0
#: An event may be dated this long before the frame that reports it (a line crossed while
#: the track was hidden is counted on its return): the ring keeps that much more.
DATED_BACK_S = 5.0
#: x264 speed of the clips. Every frame is encoded whether an event comes or not, so the
#: fastest: 1.4 ms of CPU a 640x480 frame and 11 ms at 1080p, against 4.3 and 30 ms for
#: veryfast, for about the same bytes at 1080p (bikes.mp4 scaled, crf 23).
CLIP_PRESET = "ultrafast"
#: Clips listed in the report (the most recent ones; the counts cover all).
REPORT_CLIPS = 1000


@dataclass
class _Clip:
    file: ClipFile
    track_id: int
    until: float  # seconds on the encoder's clock: the clip ends after this frame
    started: float
    events: list[dict] = field(default_factory=list)


def clip_name(event: RuleEvent, stream_id: int, live: bool, wall: float) -> str:
    """``20261208-103015.250_door_line_crossed_track12.mp4``: a live source's clip is named
    by the wall-clock time of the event, a file's by its time in the video
    (``t000123.40s_...``); then the rule, the kind of event and the track (``s2_`` first for
    stream 2 of several)."""
    if live:
        milliseconds = int(wall * 1000) % 1000
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall)) + f".{milliseconds:03d}"
    else:
        stamp = f"t{event.time:09.2f}s"
    rule = re.sub(r"[^A-Za-z0-9_.-]+", "-", event.rule)
    prefix = f"s{stream_id}_" if stream_id else ""
    return f"{prefix}{stamp}_{rule}_{event.kind}_track{event.track_id}.mp4"


class ClipSink(Sink):
    """Writes a clip around each rule event into ``folder`` (see the module doc).

    Args:
        folder: where the clips go (created if missing).
        fps: the source's frame rate (rate control, keyframe spacing, time of frames
            without a timestamp).
        pre_s, post_s: seconds kept before and after each event.
        live: name clips by wall-clock time (cameras) rather than video time (files).
        preset: x264 speed (:data:`CLIP_PRESET`).
    """

    name = "clips"
    label = "event clips"
    shows_frames = True

    def __init__(self, folder: str | Path, fps: float, pre_s: float = 5.0, post_s: float = 5.0,
                 live: bool = False, preset: str = CLIP_PRESET) -> None:
        self.path = Path(folder)
        self.path.mkdir(parents=True, exist_ok=True)
        self.fps = fps if fps and fps > 0 else 30.0
        self.pre_s, self.post_s = float(pre_s), float(post_s)
        self.live = live
        self.preset = preset
        self._encoder: PacketEncoder | None = None
        self._ring: deque[EncodedFrame] = deque()
        self._keyframes: deque[int] = deque()  # pts of the ring's keyframes, oldest first
        self._open: list[_Clip] = []
        self._written: deque[dict] = deque(maxlen=REPORT_CLIPS)
        self.clips = self.skipped = 0
        self._clock_offset = 0.0
        self._last_time: float | None = None

    def write(self, packet: FramePacket) -> None:
        image = packet.annotated if packet.annotated is not None else packet.image
        if self._encoder is not None and image.shape[:2] != (self._encoder.height,
                                                             self._encoder.width):
            self._restart()  # the source changed size (a camera reconfigured)
        if self._encoder is None:
            height, width = image.shape[:2]
            self._encoder = PacketEncoder(width, height, self.fps, preset=self.preset)
        raw = packet.pts if packet.pts is not None else packet.index / self.fps
        now = self._clock(raw)
        self._finish(lambda clip: clip.until < now)  # before this frame: past their end
        for frame in self._encoder.encode(image, now):
            self._keep(frame)
        for event in packet.events:
            if isinstance(event, RuleEvent):
                # an event may be dated before this frame (a line crossed while hidden):
                # its clip's seconds before count from then
                moment = now - max(0.0, raw - event.time)
                self._on_event(event, packet.stream_id, now, moment)

    def _clock(self, raw: float) -> float:
        """The frame's time ``raw`` (seconds) on a clock that never goes back (a looping
        file starts over)."""
        if self._last_time is not None and raw + self._clock_offset <= self._last_time:
            self._clock_offset = self._last_time + 1.0 / self.fps - raw
        self._last_time = raw + self._clock_offset
        return self._last_time

    def _keep(self, frame: EncodedFrame) -> None:
        """Add a packet to the ring and the open clips; drop what no clip can need: packets
        before the newest keyframe that is at least ``pre`` seconds old."""
        self._ring.append(frame)
        if frame.keyframe:
            self._keyframes.append(frame.pts)
        for clip in self._open:
            clip.file.write(frame)
        oldest_needed = frame.pts - (self.pre_s + DATED_BACK_S) * 1000
        while len(self._keyframes) >= 2 and self._keyframes[1] <= oldest_needed:
            self._keyframes.popleft()
            while self._ring[0].pts < self._keyframes[0]:
                self._ring.popleft()

    def _on_event(self, event: RuleEvent, stream_id: int, now: float, moment: float) -> None:
        record = {**event.to_dict(), "stream": stream_id}
        for clip in self._open:
            if clip.track_id == event.track_id and now - clip.started < MAX_CLIP_S:
                clip.until = max(clip.until, now + self.post_s)
                clip.events.append(record)
                return
        if len(self._open) >= MAX_OPEN:
            self.skipped += 1
            return
        start = self._ring[0].pts
        for pts in self._keyframes:  # the newest keyframe at least `pre` before the event
            if pts <= (moment - self.pre_s) * 1000:
                start = pts
        path = self.path / clip_name(event, stream_id, self.live, time.time())
        clip = _Clip(ClipFile(path, self._encoder), event.track_id, now + self.post_s, now,
                     [record])
        for frame in self._ring:
            if frame.pts >= start:
                clip.file.write(frame)
        self._open.append(clip)

    def _finish(self, done) -> None:
        """Close the open clips for which ``done(clip)`` holds and record them."""
        still = []
        for clip in self._open:
            if not done(clip):
                still.append(clip)
                continue
            clip.file.close()
            self.clips += 1
            self._written.append({"path": str(clip.file.path), "frames": clip.file.frames,
                                  "seconds": round(clip.file.seconds, 3),
                                  "events": clip.events})
        self._open = still

    def _restart(self) -> None:
        self._finish(lambda clip: True)
        if self._encoder is not None:
            self._encoder.close()
        self._encoder = None
        self._ring.clear()
        self._keyframes.clear()

    def close(self) -> None:
        """Finalise the clips still open (they end where the video ended)."""
        self._restart()

    def report(self) -> dict:
        """``written``: clips finished; ``skipped``: events with no clip because
        :data:`MAX_OPEN` were being written; ``clips``: the most recent clips (path, frames,
        seconds and the events they show)."""
        return {"folder": str(self.path), "written": self.clips, "skipped": self.skipped,
                "pre_s": self.pre_s, "post_s": self.post_s, "clips": list(self._written)}
