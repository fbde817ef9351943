"""The fleet's HTTP endpoint: its state as JSON, and changes while it runs.

=======  ====================  ==================================================
method   path                  does
=======  ====================  ==================================================
GET      ``/status``           the whole fleet (``Fleet.report``'s keys)
GET      ``/streams/NAME``     one stream's statistics
POST     ``/streams``          add a stream: a JSON object in the YAML's stream
                               grammar (``name``, ``uri``, ``fps``...)
DELETE   ``/streams/NAME``     stop a stream, finalise its outputs
POST     ``/workers``          add a worker: ``name``, ``cpus``, ``gpus``,
                               ``capacity_fps``
=======  ====================  ==================================================

Answers are JSON; a refused change answers 400 with ``{"error": "one line"}``. The server
binds to loopback unless told otherwise: it can change the fleet and has no authentication.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

from detstream.engines.errors import UserInputError
from detstream.stream.fleet.config import parse_stream, parse_worker

#: Port ``detstream fleet run`` serves on unless told otherwise (a busy one: any free port).
DEFAULT_PORT = 8780
#: Largest request body accepted (a stream or worker description).
MAX_BODY = 64 * 1024


class FleetServer:
    """Serve ``fleet``'s state and take changes, on a thread of its own.

    Args:
        fleet: the running :class:`~detstream.stream.fleet.controller.Fleet`.
        host: address to bind (loopback by default).
        port: port to bind; 0 picks a free one.
    """

    def __init__(self, fleet: Any, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.fleet = fleet
        handler = type("Handler", (_Handler,), {"fleet": fleet})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fleet-http",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    fleet: Any = None
    server_version = "detstream-fleet"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return  # requests are not news; the fleet logs what they change

    def _send(self, status: int, body: Any) -> None:
        data = (json.dumps(body, indent=2) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise UserInputError(f"the request body is {length} bytes; at most {MAX_BODY}")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            raise UserInputError("the request body is not JSON; send one JSON object") from None

    def _path(self) -> list[str]:
        return [unquote(p) for p in urlparse(self.path).path.strip("/").split("/") if p]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = self._path()
        state = self.fleet.snapshot()
        if parts in (["status"], []):
            self._send(200, state)
        elif len(parts) == 2 and parts[0] == "streams":
            found = [s for s in state.get("streams", []) if s["name"] == parts[1]]
            if found:
                self._send(200, found[-1])
            else:
                self._refuse(404, f"no stream named {parts[1]!r}")
        else:
            self._refuse(404, "unknown path; use /status or /streams/NAME")

    def do_POST(self) -> None:  # noqa: N802
        parts = self._path()
        try:
            body = self._body()
            config = self.fleet.config
            if parts == ["streams"]:
                spec = parse_stream(body, config)  # clashing outputs: the fleet refuses
                self._send(200, self.fleet.request("add_stream", spec))
            elif parts == ["workers"]:
                spec = parse_worker(body, config, len(self.fleet.members))
                self._send(200, self.fleet.request("add_worker", spec))
            else:
                self._refuse(404, "unknown path; POST to /streams or /workers")
        except UserInputError as exc:
            self._refuse(400, str(exc))

    def do_DELETE(self) -> None:  # noqa: N802
        parts = self._path()
        if len(parts) != 2 or parts[0] != "streams":
            self._refuse(404, "unknown path; DELETE /streams/NAME")
            return
        try:
            self._send(200, self.fleet.request("remove_stream", parts[1]))
        except UserInputError as exc:
            self._refuse(400, str(exc))


def serve(fleet: Any, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> FleetServer:
    """Start the endpoint on ``port``, or on any free port when that one is taken."""
    try:
        return FleetServer(fleet, host, port)
    except OSError:
        if port == 0:
            raise
        return FleetServer(fleet, host, 0)
