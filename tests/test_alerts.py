"""Alerts to a webhook (issue 37) against a real HTTP server on 127.0.0.1: events delivered in
order, a server down for a while then back (nothing lost, the pipeline never waits), the
cooldown, a full queue, and a run that posts its line crossings."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from detstream.stream.analytics import RuleEvent
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.alerts import WebhookSink


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it, in order."""

    def __init__(self, port: int = 0) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def packet(frame: int, *events: RuleEvent) -> FramePacket:
    return FramePacket(0, frame, frame / 30.0, 0.0, np.zeros((4, 4, 3), np.uint8),
                       events=list(events))


def crossing(track: int, frame: int, kind: str = "line_crossed") -> RuleEvent:
    return RuleEvent(kind, "door", track, 0, "person", frame, frame / 30.0,
                     direction="in" if kind == "line_crossed" else None)


def test_events_are_posted_in_order_as_json():
    receiver = Receiver()
    try:
        sink = WebhookSink(receiver.url)
        for k in range(10):
            sink.write(packet(k, crossing(k + 1, k)))
        sink.close()
    finally:
        receiver.close()
    assert [r["track_id"] for r in receiver.received] == list(range(1, 11))
    assert receiver.received[0] == {**crossing(1, 0).to_dict(), "stream": 0}
    assert sink.report()["delivered"] == 10 and sink.report()["pending"] == 0


def test_a_server_down_for_a_while_gets_every_event_in_order_once_back():
    port = free_port()
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", drain_s=20.0)
    for k in range(20):  # the server is down: these only queue
        sink.write(packet(k, crossing(k + 1, k)))
    time.sleep(1.5)  # deliveries fail and are retried meanwhile
    assert sink.report()["delivered"] == 0 and sink.report()["retries"] >= 1
    receiver = Receiver(port)
    try:
        sink.close()
    finally:
        receiver.close()
    assert [r["track_id"] for r in receiver.received] == list(range(1, 21))
    assert sink.report()["delivered"] == 20 and sink.report()["pending"] == 0


def test_the_cooldown_holds_back_repeats_of_one_rule_track_and_kind():
    receiver = Receiver()
    try:
        sink = WebhookSink(receiver.url, cooldown_s=5.0)
        sink.write(packet(0, crossing(1, 0, "zone_entered")))
        sink.write(packet(30, crossing(1, 30, "zone_entered")))  # 1 s later: held back
        sink.write(packet(31, crossing(1, 31, "zone_left")))  # another kind: sent
        sink.write(packet(300, crossing(1, 300, "zone_entered")))  # 10 s later: sent
        sink.close()
    finally:
        receiver.close()
    assert [(r["event"], r["frame"]) for r in receiver.received] == [
        ("zone_entered", 0), ("zone_left", 31), ("zone_entered", 300)]
    assert sink.report()["suppressed"] == 1


def test_a_full_queue_drops_the_newest_and_counts_them():
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", capacity=3, drain_s=0.5)
    for k in range(8):
        sink.write(packet(k, crossing(k + 1, k)))
    sink.close()
    stats = sink.report()
    assert stats["dropped"] >= 4 and stats["queued"] + stats["dropped"] == 8
    assert stats["delivered"] == 0 and stats["pending"] == stats["queued"]


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "localhost:8080"])
def test_a_webhook_that_is_not_http_is_one_line(url):
    from tests.conftest import run_main

    result = run_main("run", "--webhook", url)
    assert result.returncode == 2 and "http:// or https://" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_posts_its_line_crossings(tmp_path):
    from tests.conftest import run_main

    receiver = Receiver()
    stats = tmp_path / "stats.json"
    try:
        result = run_main("run", "--source", "synthetic://?seed=1&size=320x240&fps=30&frames=90"
                          "&camera_motion=0&objects=8&min_size=20", "--imgsz", "320",
                          "--line", "across:0,120,320,120", "--webhook", receiver.url,
                          "--stats-json", str(stats))
    finally:
        receiver.close()
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(stats.read_text())
    crossings = report["analytics"]["events"].get("line_crossed", 0)
    posted = [r for r in receiver.received if r["event"] == "line_crossed"]
    assert len(posted) == crossings and report["webhook"]["delivered"] == len(receiver.received)
    assert all(r["rule"] == "across" and r["stream"] == 0 for r in posted)


MOSQUITTO = "/usr/sbin/mosquitto"


class Broker:
    """Debian's mosquitto on 127.0.0.1 (a port of its own), keeping its sessions on disk so a
    restart loses nothing queued for a subscriber."""

    def __init__(self, folder, port: int) -> None:
        self.port = port
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                               f"persistence true\npersistence_location {folder}/\n")
        self.process = None
        self.start()

    def start(self) -> None:
        import subprocess

        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.process.terminate()  # SIGTERM: it saves its sessions
        self.process.wait(timeout=10)


class Subscriber:
    """A persistent MQTT session on ``topic`` keeping every message, in order."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.received: list[dict] = []
        self.ready = threading.Event()
        client = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                           client_id="detstream-test", clean_session=False)
        client.reconnect_delay_set(min_delay=1, max_delay=1)

        def connected(client, userdata, flags, reason, properties) -> None:
            client.subscribe(topic, qos=1)

        client.on_connect = connected
        client.on_subscribe = lambda *args: self.ready.set()
        client.on_message = lambda c, u, message: self.received.append(
            json.loads(message.payload))
        client.connect("127.0.0.1", port)
        client.loop_start()
        assert self.ready.wait(10), "the subscriber did not subscribe"

    def wait_for(self, count: int, seconds: float = 20.0) -> None:
        deadline = time.time() + seconds
        while len(self.received) < count and time.time() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    import os

    # make test installs Debian's mosquitto, and paho-mqtt is a dev dependency
    assert os.path.exists(MOSQUITTO), "mosquitto is missing: run make mqtt (apt-get install)"
    running = Broker(tmp_path, free_port())
    yield running
    if running.process.poll() is None:
        running.stop()


def test_events_are_published_on_the_topic_in_order(broker):
    from detstream.stream.sinks.alerts import MqttSink

    subscriber = Subscriber(broker.port, "site/events")
    try:
        sink = MqttSink(f"127.0.0.1:{broker.port}/site/events")
        for k in range(10):
            sink.write(packet(k, crossing(k + 1, k)))
        sink.close()
        subscriber.wait_for(10)
    finally:
        subscriber.close()
    assert [r["track_id"] for r in subscriber.received] == list(range(1, 11))
    assert sink.report()["delivered"] == 10


def test_a_broker_restart_loses_no_event_and_keeps_their_order(broker):
    from detstream.stream.sinks.alerts import MqttSink

    subscriber = Subscriber(broker.port, "site/events")
    try:
        sink = MqttSink(f"127.0.0.1:{broker.port}/site/events", drain_s=30.0)
        for k in range(5):
            sink.write(packet(k, crossing(k + 1, k)))
        subscriber.wait_for(5)
        broker.stop()
        for k in range(5, 15):  # the broker is down: these only queue
            sink.write(packet(k, crossing(k + 1, k)))
        time.sleep(1.5)
        broker.start()
        sink.close()
        subscriber.wait_for(15)
    finally:
        subscriber.close()
    ids = [r["track_id"] for r in subscriber.received]
    assert sorted(set(ids)) == list(range(1, 16))  # nothing lost
    assert ids == sorted(ids)  # in order (a message sent twice around the restart may repeat)
    assert sink.report()["delivered"] == 15 and sink.report()["retries"] >= 1


def test_an_mqtt_address_without_a_topic_is_one_line():
    from tests.conftest import run_main

    result = run_main("run", "--mqtt", "127.0.0.1:1883")
    assert result.returncode == 2 and "HOST[:PORT]/TOPIC" in result.stderr
