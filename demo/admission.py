"""A limit on sessions running at once per backend, first come first served, with each
waiting session's place in line (shown in the page)."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Ticket:
    """One session's place: ``lane`` is the backend it runs on."""

    lane: str
    number: int
    admitted: bool = False


@dataclass
class Admission:
    """At most ``limit`` admitted tickets per lane; the others wait in order."""

    limit: int = 2
    _waiting: dict[str, deque[Ticket]] = field(default_factory=dict)
    _running: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _numbers: itertools.count = field(default_factory=itertools.count)

    def join(self, lane: str) -> Ticket:
        """Queue up; :meth:`poll` tells when it is your turn."""
        ticket = Ticket(lane, next(self._numbers))
        with self._lock:
            self._waiting.setdefault(lane, deque()).append(ticket)
        return ticket

    def poll(self, ticket: Ticket) -> int:
        """0 when admitted (now or before), else the place in line (1: next)."""
        with self._lock:
            if ticket.admitted:
                return 0
            line = self._waiting.get(ticket.lane, deque())
            if (line and line[0] is ticket
                    and self._running.get(ticket.lane, 0) < max(1, self.limit)):
                line.popleft()
                ticket.admitted = True
                self._running[ticket.lane] = self._running.get(ticket.lane, 0) + 1
                return 0
            return line.index(ticket) + 1 if ticket in line else 0

    def leave(self, ticket: Ticket) -> None:
        """Give the place back (admitted or still waiting); safe to call twice."""
        with self._lock:
            if ticket.admitted:
                ticket.admitted = False
                self._running[ticket.lane] = max(0, self._running.get(ticket.lane, 0) - 1)
                ticket.lane = ""  # a second leave() finds nothing to give back
                return
            line = self._waiting.get(ticket.lane)
            if line is not None and ticket in line:
                line.remove(ticket)

    def running(self) -> int:
        with self._lock:
            return sum(self._running.values())

    def waiting(self) -> int:
        with self._lock:
            return sum(len(line) for line in self._waiting.values())
