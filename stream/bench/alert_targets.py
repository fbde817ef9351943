"""The receiving side of ``detstream bench alerts``: a webhook server and an MQTT broker with
a subscriber, each keeping every event in arrival order and able to go down and come back on
the same address, run in a process of their own (:class:`Receiver`) as they would run on
another machine.

Light to import (no torch, no pipeline): the receiver's process imports this module alone.
Arrival times are ``time.monotonic()`` seconds, one clock for every process of the machine.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from detstream.engines.errors import UserInputError

#: Where mosquitto is (Debian's package; ``make test`` installs it).
MOSQUITTO = "/usr/sbin/mosquitto"
#: Longest wait for the receiver's process to start and to answer a command.
RECEIVER_S = 30.0


@dataclass(frozen=True)
class Arrival:
    """One event as a receiver got it: when (``time.monotonic()``) and its JSON object."""

    at: float
    record: dict


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebhookServer:
    """An HTTP server on 127.0.0.1 (a thread a request) keeping every JSON body POSTed to it,
    in arrival order; :meth:`down` closes its socket, :meth:`up` listens again on the same
    port."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[Arrival] = []
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self.up()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(Arrival(time.monotonic(), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        return Handler

    def options(self) -> dict:
        """``--webhook`` to this server."""
        return {"webhook": f"http://127.0.0.1:{self.port}/events"}

    def up(self) -> None:
        """Listen (again) on the port."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="webhook-server",
                         daemon=True).start()

    def down(self) -> None:
        """Stop serving and close the socket (the requests in hand are answered first)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # the listening socket goes: connections refused
            self._server = None

    def close(self) -> None:
        """Stop for good."""
        self.down()


def mosquitto() -> str:
    """The mosquitto program.

    Raises:
        UserInputError: it is not installed.
    """
    found = MOSQUITTO if os.path.exists(MOSQUITTO) else shutil.which("mosquitto")
    if found is None:
        raise UserInputError("the mqtt case needs mosquitto: apt-get install mosquitto "
                             "(or leave it out: --cases webhook)")
    return found


class MqttTarget:
    """mosquitto on a free port of 127.0.0.1, its sessions saved every second in ``folder``,
    and a subscriber on ``topic`` (QoS 1, a persistent session under a fixed client id,
    reconnecting every second) keeping every message in arrival order. :meth:`down` kills
    the broker (SIGKILL); :meth:`up` starts it again on the same port.

    Raises:
        UserInputError: mosquitto or paho-mqtt is missing.
        RuntimeError: the broker did not start, or the subscriber did not subscribe.
    """

    topic = "detstream/bench/events"

    def __init__(self, folder: Path) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise UserInputError("the mqtt case needs paho-mqtt: pip install "
                                 "'detstream[alerts]'") from None
        self.program = mosquitto()
        self.received: list[Arrival] = []
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        # The queue limit is lifted so that the broker's own limit cannot be what loses an
        # event for a subscriber that is reconnecting.
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                               f"persistence true\npersistence_location {folder}/\n"
                               "autosave_interval 1\nmax_queued_messages 1000000\n")
        self._broker: subprocess.Popen | None = None
        self.up()
        subscribed = threading.Event()
        client = self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                            client_id=f"detstream-bench-{self.port}",
                                            clean_session=False)
        client.reconnect_delay_set(min_delay=1, max_delay=1)

        def connected(client, userdata, flags, reason, properties) -> None:
            client.subscribe(self.topic, qos=1)  # again after each reconnect: harmless

        def message(client, userdata, msg) -> None:
            self.received.append(Arrival(time.monotonic(), json.loads(msg.payload)))

        client.on_connect = connected
        client.on_subscribe = lambda *args: subscribed.set()
        client.on_message = message
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        if not subscribed.wait(10.0):
            self.close()
            raise RuntimeError("the MQTT subscriber did not subscribe within 10 s")
        time.sleep(1.5)  # the broker's next autosave holds the subscription

    def options(self) -> dict:
        """``--mqtt`` to this broker and topic."""
        return {"mqtt": f"127.0.0.1:{self.port}/{self.topic}"}

    def up(self) -> None:
        """Start the broker on the port and wait until it accepts connections."""
        self._broker = subprocess.Popen([self.program, "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.perf_counter() + 10.0
        while time.perf_counter() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self._broker.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not start on 127.0.0.1:{self.port}")

    def down(self) -> None:
        """Kill the broker (SIGKILL: no goodbye to its clients, no last save)."""
        if self._broker is not None:
            self._broker.kill()
            self._broker.wait(timeout=10)
            self._broker = None

    def close(self) -> None:
        """Disconnect the subscriber and stop the broker."""
        self._client.disconnect()
        self._client.loop_stop()
        self.down()


def _receive(kind: str, folder: str, conn: Connection) -> None:
    """The receiver's process (see :class:`Receiver`): opens the ``kind`` target, says its
    run options, then does what ``conn`` asks until ``close``."""
    target: WebhookServer | MqttTarget
    try:
        target = WebhookServer() if kind == "webhook" else MqttTarget(Path(folder))
    except UserInputError as exc:
        conn.send(("user", str(exc)))
        return
    except (RuntimeError, OSError) as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", target.options()))
    try:
        while (command := conn.recv()) != "close":
            if command == "down":
                target.down()
            elif command == "up":
                target.up()
            elif command == "count":
                conn.send(len(target.received))
                continue
            elif command == "received":
                conn.send([(a.at, a.record) for a in target.received])
                continue
            conn.send(time.monotonic())  # when it took effect
    finally:
        target.close()


class Receiver:
    """A case's target (``webhook``: :class:`WebhookServer`; ``mqtt``: :class:`MqttTarget`)
    in a process of its own, driven over a pipe: the receiving side costs the pipeline's
    process nothing, as on another machine.

    Raises:
        UserInputError: the mqtt case without mosquitto or paho-mqtt.
        RuntimeError: the process did not start its target.
    """

    def __init__(self, kind: str, folder: Path) -> None:
        context = multiprocessing.get_context("spawn")  # this process runs threads: no fork
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_receive, args=(kind, str(folder), child),
                                        name=f"{kind}-receiver", daemon=True)
        self._process.start()
        child.close()
        if not self._conn.poll(RECEIVER_S):
            self._process.kill()
            raise RuntimeError(f"the {kind} receiver did not start within {RECEIVER_S:g} s")
        status, value = self._conn.recv()
        if status != "ready":
            self._process.join(RECEIVER_S)
            raise (UserInputError if status == "user" else RuntimeError)(value)
        self._options: dict = value

    def options(self) -> dict:
        """The run options that send the alerts here (``{"webhook": URL}`` ...)."""
        return dict(self._options)

    def _ask(self, command: str) -> Any:
        self._conn.send(command)
        if not self._conn.poll(RECEIVER_S):
            raise RuntimeError(f"the receiver did not answer {command!r}")
        return self._conn.recv()

    def down(self) -> float:
        """Take the target down (connections refused); returns when that took effect."""
        return float(self._ask("down"))

    def up(self) -> float:
        """Bring the target back on the same address; returns when it listens again."""
        return float(self._ask("up"))

    def count(self) -> int:
        """Events received so far."""
        return int(self._ask("count"))

    def received(self) -> list[Arrival]:
        """Every event received, in arrival order."""
        return [Arrival(at, record) for at, record in self._ask("received")]

    def close(self) -> None:
        """Stop the target and the process."""
        try:
            self._conn.send("close")
        except OSError:
            pass  # it has gone already
        self._process.join(RECEIVER_S)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()
