"""Alerts: the counting lines' and watched areas' events sent out as they happen, to a webhook
(an HTTP POST of JSON) or an MQTT broker (a QoS 1 message of JSON on a topic).

Each :class:`~detstream.stream.analytics.RuleEvent` of a frame becomes one JSON object (its
``to_dict()`` with the stream's number). The pipeline never waits for the network:
:meth:`AlertSink.write` only queues, and a thread of its own sends the events one at a time,
in order. A failed send (refused, timed out, an HTTP status other than 2xx, a broker that is
not there) is retried after 0.5 s, doubling to 8 s, until it goes through, so a server or a
broker that is down for a while gets every event, in order, once it is back. The queue holds
:data:`QUEUE_EVENTS`; beyond that the newest events are dropped and counted. A cooldown per
rule, track, kind and direction keeps a track flickering on an area's edge from sending the
same alert again and again (suppressed events are counted too). Closing waits up to
``drain_s`` for the queue to empty.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from abc import abstractmethod
from dataclasses import dataclass

from detstream.stream.analytics.events import RuleEvent
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import Sink

#: Events the delivery queue holds before new ones are dropped (and counted).
QUEUE_EVENTS = 10_000
#: Retry delays: the first, and the longest (doubling in between).
RETRY_FIRST_S, RETRY_MOST_S = 0.5, 8.0
#: Cooldown entries kept before those past their cooldown are let go (a run of days meets
#: new track ids all the time; an entry older than the cooldown can hold nothing back).
COOLDOWN_KEYS = 4096


@dataclass
class AlertStats:
    """What an alert output did: events queued, delivered, retried, dropped (queue full),
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


class AlertSink(Sink):
    """Send each rule event of every frame with :meth:`_send` (see the module doc); the
    subclasses say where.

    Args:
        cooldown_s: the same rule, track, kind and direction alert at most once in this many
            seconds of the stream's clock (0: every event).
        timeout_s: seconds one delivery may take.
        drain_s: seconds :meth:`close` waits for the queued events to be delivered.
        capacity: events the queue holds.
    """

    def __init__(self, cooldown_s: float = 0.0, timeout_s: float = 5.0, drain_s: float = 10.0,
                 capacity: int = QUEUE_EVENTS) -> None:
        self.cooldown_s = cooldown_s
        self.timeout_s = timeout_s
        self.drain_s = drain_s
        self.stats = AlertStats()
        self._queue: queue.Queue[dict] = queue.Queue(maxsize=capacity)
        self._last: dict[tuple, float] = {}  # (rule, track, kind, direction) -> time last sent
        self._prune_at = COOLDOWN_KEYS
        self._closing = threading.Event()
        self._drain_until = float("inf")  # set by close()
        self._unsent = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._deliver, name=self.name, daemon=True)
        self._thread.start()

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
            if self.cooldown_s > 0:
                self._last[key] = event.time
                if len(self._last) >= self._prune_at:
                    self._forget(event.time)
            try:
                self._queue.put_nowait({**event.to_dict(), "stream": packet.stream_id})
            except queue.Full:
                with self._lock:
                    self.stats.dropped += 1
                continue
            with self._lock:
                self.stats.queued += 1

    def _forget(self, now: float) -> None:
        """Let go of the cooldown entries that can no longer hold an event back at ``now``;
        the next pruning waits until the kept ones have doubled."""
        self._last = {key: at for key, at in self._last.items() if now - at < self.cooldown_s}
        self._prune_at = max(COOLDOWN_KEYS, 2 * len(self._last))

    @abstractmethod
    def _send(self, record: dict) -> None:
        """Deliver one event, or raise ``OSError`` (or ``ValueError``) to have it retried."""

    def _opened(self) -> None:
        """Called in the sending thread before the first event (a client may connect)."""

    def _closed(self) -> None:
        """Called in the sending thread when it stops."""

    def _deliver(self) -> None:
        try:
            self._opened()
            self._deliver_all()
        finally:
            self._closed()

    def _deliver_all(self) -> None:
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
                    self._send(record)
                except (OSError, ValueError) as exc:
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
        """The delivery counters (in the run statistics under the sink's name)."""
        with self._lock:
            return self.stats.report()


class WebhookSink(AlertSink):
    """POST each rule event as JSON to ``url`` (``--webhook``; a status other than 2xx is a
    failure, retried)."""

    name = "webhook"
    label = "webhook"

    def __init__(self, url: str, cooldown_s: float = 0.0, **options) -> None:
        self.url = url
        super().__init__(cooldown_s, **options)

    def describe(self) -> str:
        return f"webhook {self.url}"

    def _send(self, record: dict) -> None:
        body = json.dumps(record, separators=(",", ":")).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            response.read()


def parse_mqtt(address: str) -> tuple[str, int, str]:
    """``HOST[:PORT]/TOPIC`` → ``(host, port, topic)`` (port 1883 when not given).

    Raises:
        ValueError: no host, a port that is not a number from 1 to 65535, or no topic.
    """
    where, slash, topic = address.partition("/")
    host, colon, port = where.rpartition(":") if ":" in where else (where, "", "1883")
    if not slash or not topic.strip() or not host.strip():
        raise ValueError(f"expected HOST[:PORT]/TOPIC, e.g. 127.0.0.1:1883/detstream/events, "
                         f"got {address!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{port!r} is not a port (1-65535) in {address!r}")
    return host.strip(), int(port), topic.strip()


class MqttSink(AlertSink):
    """Publish each rule event as JSON on an MQTT topic (``--mqtt HOST[:PORT]/TOPIC``), QoS 1:
    an event counts as delivered when the broker has acknowledged it."""

    name = "mqtt"
    label = "MQTT alerts"

    def __init__(self, address: str, cooldown_s: float = 0.0, **options) -> None:
        import paho.mqtt.client as mqtt  # an optional dependency: only runs with --mqtt

        self.address = address
        self.host, self.port, self.topic = parse_mqtt(address)
        self._mqtt = mqtt
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.reconnect_delay_set(min_delay=1, max_delay=8)
        super().__init__(cooldown_s, **options)

    def describe(self) -> str:
        return f"MQTT alerts {self.address}"

    def _opened(self) -> None:
        self._client.loop_start()  # paho's network thread; it reconnects by itself
        try:
            self._client.connect_async(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as exc:
            with self._lock:
                self.stats.last_error = str(exc)

    def _send(self, record: dict) -> None:
        if not self._client.is_connected():
            raise ConnectionError(f"not connected to {self.host}:{self.port}")
        body = json.dumps(record, separators=(",", ":"))
        message = self._client.publish(self.topic, body, qos=1)
        if message.rc != self._mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(self._mqtt.error_string(message.rc))
        try:
            message.wait_for_publish(timeout=self.timeout_s)
        except (RuntimeError, ValueError) as exc:  # the connection went while waiting
            raise ConnectionError(str(exc)) from None
        if not message.is_published():
            raise TimeoutError(f"the broker did not acknowledge within {self.timeout_s:g} s")

    def _closed(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
