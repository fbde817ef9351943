"""A progress journal: what a run has fully written, so that a run killed mid-way can be
resumed with every frame in its outputs exactly once.

:class:`ProgressJournal` is the last sink of a pipeline. After the other sinks have taken a
frame it flushes the file outputs (JSON Lines, MOT) to the operating system and records, in
one small ``pwrite`` at offset 0, one JSON line::

    {"frame": 41, "sizes": {"/abs/out.jsonl": 52817, "/abs/tracks.txt": 9120}, "max_track_id": 7}

``frame`` is the last frame every output holds in full, ``sizes`` the byte length of each
file at that moment and ``max_track_id`` the largest track id written so far; a run with
counting lines or watched areas adds ``analytics``, their counts after that frame. A killed process
cannot tear a single small ``pwrite``; a record shorter than the one before leaves the old
tail after its newline, so readers parse the first line only. Nothing is synced to disk: the
journal survives a killed process (the page cache holds it), not a power cut.

:func:`prepare_resume` reads the record and cuts every output back to its recorded size,
dropping a frame that was written only in part; the resumed run then appends from
``next_frame`` and numbers new tracks from ``max_track_id + 1``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from detstream.engines.errors import UserInputError
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import OutputError, Sink

#: The suffix ``detstream run`` adds to its first file output to name the journal.
JOURNAL_SUFFIX = ".progress"


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run continues.

    Attributes:
        next_frame: the first frame index not fully written (the last written one + 1).
        sizes: absolute path of each file output → its length in bytes after that frame.
        max_track_id: the largest track id written so far (0: none); new tracks are numbered
            from the next one.
        analytics: the counting lines' and watched areas' counts after that frame
            (``None``: the run had none); the resumed run's rules carry on from them.
    """

    next_frame: int
    sizes: dict[str, int]
    max_track_id: int
    analytics: dict | None = None


class ProgressJournal(Sink):
    """Record after each frame how far the file outputs are written (see the module).

    It must be the last sink of its pipeline: a frame is recorded only once every sink
    before it has written it.

    Args:
        path: the journal file.
        sinks: the file outputs to flush and measure (those writing a regular file: a
            device such as ``/dev/stdout`` cannot be cut back, so it is not recorded).
        resume: the point a resumed run starts from; the journal is then kept as it is until
            the first new frame is recorded (a run killed before that resumes from the same
            point) and track ids already written count. ``None``: a new run, the journal
            starts empty.
    """

    name = "journal"
    label = "progress journal"

    def __init__(self, path: str | Path, sinks: Sequence[Sink],
                 resume: ResumePoint | None = None) -> None:
        self.path = Path(path)
        self.sinks = [sink for sink in sinks
                      if sink.path is not None and Path(sink.path).is_file()]
        self._paths = [str(Path(sink.path).resolve()) for sink in self.sinks]
        self.max_track_id = resume.max_track_id if resume is not None else 0
        flags = os.O_WRONLY | os.O_CREAT | (0 if resume is not None else os.O_TRUNC)
        self._fd: int | None = os.open(self.path, flags, 0o644)

    def write(self, packet: FramePacket) -> None:
        dets = packet.detections
        if dets is not None and len(dets):
            top = int(dets.track_ids.max())
            if top > self.max_track_id:
                self.max_track_id = top
        sizes = {}
        for sink, path in zip(self.sinks, self._paths, strict=True):
            try:
                sink.flush()
                sizes[path] = os.stat(path).st_size
            except OSError as exc:  # a full disk, a removed folder: name that output
                raise OutputError(sink, exc) from exc
        record = {"frame": packet.index, "sizes": sizes, "max_track_id": self.max_track_id}
        if packet.analytics is not None:
            record["analytics"] = packet.analytics
        line = json.dumps(record, separators=(",", ":")) + "\n"
        if self._fd is None:
            raise ValueError("the progress journal is closed")
        os.pwrite(self._fd, line.encode("utf-8"), 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_journal(path: str | Path) -> ResumePoint | None:
    """The resume point a journal records; ``None`` when it is absent or empty (no frame was
    fully written: the run starts from the beginning).

    Raises:
        UserInputError: the file is not a progress journal.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserInputError(f"cannot read the progress journal {path} ({exc.strerror}); "
                             "check the file's permissions") from None
    first = data.split(b"\n", 1)[0].strip()
    if not first:
        return None
    try:
        record = json.loads(first)
        sizes = {str(name): int(size) for name, size in record["sizes"].items()}
        analytics = record.get("analytics")
        if analytics is not None and not isinstance(analytics, dict):
            raise TypeError("analytics")
        point = ResumePoint(int(record["frame"]) + 1, sizes, int(record["max_track_id"]),
                            analytics)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserInputError(f"{path} is not a detstream progress journal; delete it and run "
                             "without --resume to start over") from None
    return point


def truncate_outputs(point: ResumePoint, journal: str | Path) -> None:
    """Cut every output ``point`` records back to its recorded size.

    Raises:
        UserInputError: an output is missing or shorter than recorded (it was replaced or
            cut since the run was interrupted).
    """
    for name, size in point.sizes.items():
        file = Path(name)
        try:
            actual = file.stat().st_size
        except FileNotFoundError:
            raise UserInputError(f"cannot resume: {file} (recorded in {journal}) is missing; "
                                 "restore it, or run without --resume to start over") from None
        if actual < size:
            raise UserInputError(f"cannot resume: {file} holds {actual} bytes but {journal} "
                                 f"recorded {size}; restore it, or run without --resume to "
                                 "start over")
        if actual > size:
            os.truncate(file, size)


def prepare_resume(path: str | Path) -> ResumePoint | None:
    """Read the journal at ``path`` and cut every recorded output back to its recorded size
    (a frame written only in part goes); ``None`` when there is no journal.

    Raises:
        UserInputError: the journal is unreadable, or an output is missing or shorter than
            recorded.
    """
    point = read_journal(path)
    if point is not None:
        truncate_outputs(point, path)
    return point


def journal_for(output: str | Path) -> Path:
    """The journal path of a run whose first file output is ``output``
    (``out.jsonl`` → ``out.jsonl.progress``)."""
    return Path(str(output) + JOURNAL_SUFFIX)


__all__ = ["JOURNAL_SUFFIX", "ProgressJournal", "ResumePoint", "journal_for", "prepare_resume",
           "read_journal", "truncate_outputs"]
