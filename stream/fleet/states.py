"""What the controller knows of each stream and each worker, and the moves a stream's state
may make.

A stream is in one :class:`StreamState` at a time and changes it only through one method of
its :class:`StreamRecord` per event (:data:`TRANSITIONS` lists them)::

    waiting ──started──► running ──finished──► done
       ▲  ▲                │ │
       │  └──lost / shed───┘ │         (any state but removed) ──removed──► removed
       │                     │
       └──retry── retrying ◄─┘ retry_later (from waiting: the source did not open)
                  waiting ──gave_up──► failed

An event its state does not allow raises :class:`IllegalTransitionError`: a bug in the
controller, never a user's mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from detstream.stream.fleet.config import StreamSpec, WorkerSpec


class StreamState(Enum):
    """Where a stream stands (``state`` in the statistics is the value)."""

    WAITING = "waiting"  # to be placed: new, moved after a lost worker, shed, or due again
    RUNNING = "running"  # on a worker
    RETRYING = "retrying"  # its source did not open; waits until its retry time
    DONE = "done"  # ended (its outputs are finalised)
    FAILED = "failed"  # its source did not open, and the retries are spent
    REMOVED = "removed"  # taken out of the fleet by a request


#: Per event: the states it may happen in, and the state it leads to.
TRANSITIONS: dict[str, tuple[frozenset[StreamState], StreamState]] = {
    "started": (frozenset({StreamState.WAITING}), StreamState.RUNNING),
    "finished": (frozenset({StreamState.RUNNING}), StreamState.DONE),
    "lost": (frozenset({StreamState.RUNNING}), StreamState.WAITING),
    "shed": (frozenset({StreamState.RUNNING}), StreamState.WAITING),
    "retry_later": (frozenset({StreamState.WAITING}), StreamState.RETRYING),
    "gave_up": (frozenset({StreamState.WAITING}), StreamState.FAILED),
    "retry": (frozenset({StreamState.RETRYING}), StreamState.WAITING),
    "removed": (frozenset(StreamState) - {StreamState.REMOVED}, StreamState.REMOVED),
}


class IllegalTransitionError(RuntimeError):
    """A stream was told of an event its state does not allow (a bug in the controller)."""


@dataclass
class StreamRecord:
    """What the controller knows of one stream.

    Attributes:
        spec: the stream as the YAML (or a request) describes it.
        index: its number (its place in the fleet's list; workers know it by this number).
    """

    spec: StreamSpec
    index: int
    state: StreamState = StreamState.WAITING
    worker: str | None = None
    resume: bool = False  # the next start continues the outputs already written
    attempts: int = 0  # failed opens in a row
    retry_at: float = 0.0
    error: str | None = None
    shortage: str | None = None  # why it waits (no room)
    restarts: int = 0  # moves after a lost worker, and returns after being shed
    runs: list[dict] = field(default_factory=list)  # statistics of runs that ended
    current: dict | None = None  # statistics of the run going on
    current_start: int = 0  # the frame the run going on started at
    workers: list[str] = field(default_factory=list)  # every worker it ran on
    lost_at: float | None = None  # when its worker was lost (until it resumes)

    # ------------------------------------------------------------------ transitions
    def started(self, worker: str, start_frame: int, now: float) -> float | None:
        """It runs on ``worker`` from ``start_frame`` (above 0: it resumed the outputs
        written before). Returns the seconds since its worker was lost when this start
        moved it, else None."""
        self._go("started")
        if self.runs and self.resume and start_frame:
            # the run on a lost worker wrote exactly the frames before this one
            last = self.runs[-1]
            written = max(0, start_frame - last["start_frame"])
            last["frames_out"] = last["frames_in"] = written
        self.worker, self.current_start = worker, start_frame
        self.attempts, self.error, self.shortage, self.resume = 0, None, None, False
        self.workers.append(worker)
        lost_at, self.lost_at = self.lost_at, None
        return None if lost_at is None else now - lost_at

    def finished(self, report: dict) -> None:
        """It ended on its worker; ``report`` is its final statistics there."""
        self._go("finished")
        self._close_run(report)
        self.worker, self.error = None, report.get("error")

    def lost(self, now: float) -> None:
        """Its worker is gone: it waits to be placed again, and resumes there."""
        self._go("lost")
        self._close_run(None)
        self.worker, self.resume, self.lost_at = None, True, now
        self.restarts += 1

    def shed(self, report: dict | None, reason: str) -> None:
        """It was stopped to make room for a higher priority (``reason`` says which); it
        waits for room and resumes."""
        self._go("shed")
        self._close_run(report)
        self.worker, self.resume, self.shortage = None, True, reason
        self.restarts += 1

    def retry_later(self, error: str, retry_at: float) -> None:
        """Its source did not open (``error``); it is tried again at ``retry_at``."""
        self._go("retry_later")
        self.attempts, self.error, self.retry_at = self.attempts + 1, error, retry_at

    def gave_up(self, error: str) -> None:
        """Its source did not open (``error``) and no retry is left."""
        self._go("gave_up")
        self.attempts, self.error = self.attempts + 1, error

    def retry(self) -> None:
        """Its retry time came: it waits to be placed again."""
        self._go("retry")

    def removed(self, report: dict | None = None) -> None:
        """It was taken out of the fleet (``report``: its final statistics when it ran)."""
        self._go("removed")
        self._close_run(report)
        self.worker = None

    # ------------------------------------------------------------------ while waiting
    def waits_for(self, reason: str) -> bool:
        """Note why it waits for room; True when that is news. A shed stream keeps saying
        that it was shed (that is why it waits)."""
        if self.state is not StreamState.WAITING:
            raise IllegalTransitionError(f"stream {self.spec.name} is {self.state.value}: "
                                         "only a waiting stream waits for room")
        if self.shortage and self.shortage.startswith("shed for"):
            return False
        news = self.shortage != reason
        self.shortage = reason
        return news

    # ------------------------------------------------------------------ helpers
    def _go(self, event: str) -> None:
        allowed, target = TRANSITIONS[event]
        if self.state not in allowed:
            ways = ", ".join(sorted(s.value for s in allowed))
            raise IllegalTransitionError(f"stream {self.spec.name}: {event!r} cannot happen "
                                         f"while {self.state.value} (only while {ways})")
        self.state = target

    def _close_run(self, final: dict | None) -> None:
        """Close the books on the run going on (its final statistics, or the last seen)."""
        report = final or self.current
        if report is not None:
            self.runs.append(dict(report) | {"start_frame": self.current_start,
                                             "worker": self.worker})
        self.current = None


@dataclass
class WorkerRecord:
    """A worker: its spec, its actor, what it can do and what it runs."""

    spec: WorkerSpec
    actor: Any
    pid: int | None = None
    host: str | None = None
    alive: bool = True
    error: str | None = None
    capacity: dict[str, float] = field(default_factory=dict)  # model key -> frames/s
    streams: set[int] = field(default_factory=set)  # numbers of the streams it runs
    inference: dict | None = None
    device: str | None = None  # the loaded model and where it runs, as the worker says
    peak_load: float = 0.0


def load_of(worker: WorkerRecord, streams: Sequence[StreamRecord]) -> float:
    """Frames/s the streams placed on ``worker`` ask for (``streams``: all, by number)."""
    return sum(streams[i].spec.fps for i in worker.streams)


def model_of(worker: WorkerRecord, streams: Sequence[StreamRecord]) -> str | None:
    """The model key ``worker`` serves (None while it runs no stream)."""
    return next((streams[i].spec.model_key for i in worker.streams), None)
