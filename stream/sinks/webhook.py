"""Alerts: the counting lines' and watched areas' events POSTed to a webhook as they happen.

Each :class:`~detstream.stream.analytics.RuleEvent` of a frame becomes one JSON object (its
``to_dict()`` with the stream's number) POSTed to the URL. The pipeline never waits for the
network: :meth:`WebhookSink.write` only queues, and a thread of its own delivers the events
one at a time, in order. A failed delivery (refused, timed out, a status other than 2xx) is
retried after 0.5 s, doubling to 8 s, until it goes through, so a server that is down for a
while gets every event, in order, once it is back. The queue holds :data:`QUEUE_EVENTS`;
beyond that the newest events are dropped and counted. A cooldown per rule, track and kind
keeps a track flickering on an area's edge from sending the same alert again and again
(suppressed events are counted too). Closing waits up to ``drain_s`` for the queue to empty.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from detstream.stream.analytics.events import RuleEvent
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import Sink

#: Events the delivery queue holds before new ones are dropped (and counted).
QUEUE_EVENTS = 10_000
#: Retry delays: the first, and the longest (doubling in between).
RETRY_FIRST_S, RETRY_MOST_S = 0.5, 8.0


@dataclass
class WebhookStats:
    """What the webhook did: events queued, delivered, retried, dropped (queue full),
    suppressed (cooldown) and still pending when it closed."""

    queued: int = 0
    delivered: int = 0
    retries: int = 0
    dropped: int = 0
    suppressed: int = 0
    pending: int = 0
    last_error: str | None = None

    def report(self) -> dict:
        return dict(self.__dict__)


class WebhookSink(Sink):
    """POST each rule event of every frame to ``url`` (see the module doc).

    Args:
        url: an ``http://`` or ``https://`` address.
        cooldown_s: the same rule, track, kind and direction alert at most once in this many
            seconds of the stream's clock (0: every event).
        timeout_s: seconds one delivery may take.
        drain_s: seconds :meth:`close` waits for the queued events to be delivered.
    """

    name = "webhook"
    label = "webhook"

    def __init__(self, url: str, cooldown_s: float = 0.0, timeout_s: float = 5.0,
                 drain_s: float = 10.0, capacity: int = QUEUE_EVENTS) -> None:
        self.url = url
        self.cooldown_s = cooldown_s
        self.timeout_s = timeout_s
        self.drain_s = drain_s
        self.stats = WebhookStats()
        self._queue: queue.Queue[dict] = queue.Queue(maxsize=capacity)
        self._last: dict[tuple, float] = {}  # (rule, track, kind, direction) -> time last sent
        self._closing = threading.Event()
        self._drain_until = float("inf")  # set by close()
        self._unsent = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._deliver, name="webhook", daemon=True)
        self._thread.start()

    def describe(self) -> str:
        return f"webhook {self.url}"

    def write(self, packet: FramePacket) -> None:
        for event in packet.events:
            if not isinstance(event, RuleEvent):
                continue
            key = (event.rule, event.track_id, event.kind, event.direction)
            last = self._last.get(key)
            if last is not None and event.time - last < self.cooldown_s:
                with self._lock:
                    self.stats.suppressed += 1
                continue
            self._last[key] = event.time
            try:
                self._queue.put_nowait({**event.to_dict(), "stream": packet.stream_id})
            except queue.Full:
                with self._lock:
                    self.stats.dropped += 1
                continue
            with self._lock:
                self.stats.queued += 1

    def _post(self, record: dict) -> None:
        body = json.dumps(record, separators=(",", ":")).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            response.read()

    def _deliver(self) -> None:
        while True:
            try:
                record = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            if self._closing.is_set() and time.perf_counter() >= self._drain_until:
                self._unsent = 1
                return
            delay = RETRY_FIRST_S
            while True:
                try:
                    self._post(record)
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    with self._lock:
                        self.stats.retries += 1
                        self.stats.last_error = str(getattr(exc, "reason", exc))
                    if not self._closing.is_set():
                        self._closing.wait(delay)  # close() cuts the wait short
                    else:
                        left = self._drain_until - time.perf_counter()
                        if left <= 0:
                            self._unsent = 1  # the one in hand; the queue holds the rest
                            return
                        time.sleep(min(delay, left))
                    delay = min(delay * 2.0, RETRY_MOST_S)
                    continue
                with self._lock:
                    self.stats.delivered += 1
                break

    def close(self) -> None:
        """Deliver what is queued (up to ``drain_s``), then stop; what is left counts as
        pending."""
        if self._closing.is_set():
            return
        self._drain_until = time.perf_counter() + self.drain_s
        self._closing.set()
        self._thread.join(timeout=self.drain_s + self.timeout_s + 1.0)
        with self._lock:
            self.stats.pending = self._queue.qsize() + self._unsent

    def report(self) -> dict:
        """The delivery counters (the run statistics' ``webhook``)."""
        with self._lock:
            return self.stats.report()
