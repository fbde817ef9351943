"""``detstream bench journal``: what the progress journal costs per frame.

The JSON Lines and MOT sinks write the same packets (``boxes`` tracked boxes each) into a
temporary folder, without and then with a :class:`ProgressJournal` after them; the difference
per frame is the journal's cost: flushing both files, measuring them and one ``pwrite``. The
two are alternated ``rounds`` times and the medians reported.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from detstream.engines.spec import Detections
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks import JsonlSink, MotSink, Sink
from detstream.stream.sinks.journal import ProgressJournal


def _packets(frames: int, boxes: int) -> list[FramePacket]:
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 1000, (boxes, 2))
    dets = Detections(boxes=np.concatenate([corner, corner + 50], 1).astype(np.float32),
                      scores=rng.uniform(0.3, 1.0, boxes).astype(np.float32),
                      class_ids=np.zeros(boxes, np.int32),
                      track_ids=np.arange(1, boxes + 1, dtype=np.int64), class_names=("a",))
    image = np.zeros((8, 8, 3), np.uint8)
    return [FramePacket(0, i, i / 30.0, 0.0, image, detections=dets) for i in range(frames)]


def _per_frame_us(packets: list[FramePacket], journal: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sinks: list[Sink] = [JsonlSink(root / "out.jsonl"), MotSink(root / "out.txt")]
        if journal:
            sinks.append(ProgressJournal(root / "out.jsonl.progress", list(sinks)))
        start = time.perf_counter()
        for packet in packets:
            for sink in sinks:
                sink.write(packet)
        seconds = time.perf_counter() - start
        for sink in sinks:
            sink.close()
    return seconds / len(packets) * 1e6


def journal_cost(frames: int = 20000, boxes: int = 10, rounds: int = 3) -> dict:
    """Median µs per frame of the two file sinks alone, with the journal, and the difference,
    with the settings they were measured at."""
    packets = _packets(frames, boxes)
    plain, journaled = [], []
    for _ in range(rounds):
        plain.append(_per_frame_us(packets, journal=False))
        journaled.append(_per_frame_us(packets, journal=True))
    base, full = statistics.median(plain), statistics.median(journaled)
    return {"frames": frames, "boxes": boxes, "rounds": rounds, "sinks_us": round(base, 1),
            "with_journal_us": round(full, 1), "journal_us": round(full - base, 1)}


def print_journal(cost: dict) -> None:
    """One line: the sinks alone, with the journal, and the journal's share (µs per frame)."""
    print(f"JSON Lines + MOT sinks, {cost['boxes']} boxes a frame: {cost['sinks_us']} µs/frame; "
          f"with the progress journal {cost['with_journal_us']} µs/frame; the journal "
          f"{cost['journal_us']:+} µs/frame")
