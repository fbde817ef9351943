"""A model mirror on 127.0.0.1 for download tests: a real HTTP server holding files under their
own names, answering range requests, counting requests, and able to cut a transfer short or
serve damaged bytes on demand."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class MirrorServer:
    """Serve ``files`` (name -> bytes) at ``url``/name.

    Attributes:
        requests: GET requests per file name.
        cut_next: the next N transfers of a file stop halfway (the connection closes).
        damage: file names served with altered bytes.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.requests: dict[str, int] = {}
        self.ranges: list[str] = []
        self.cut_next = 0
        self.damage: set[str] = set()
        self._lock = threading.Lock()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                with mirror._lock:
                    mirror.requests[name] = mirror.requests.get(name, 0) + 1
                    cut = mirror.cut_next > 0
                    mirror.cut_next -= 1 if cut else 0
                data = mirror.files.get(name)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                if name in mirror.damage:
                    data = data[:100] + bytes(len(data) - 100)
                start = 0
                header = self.headers.get("Range")
                if header:
                    mirror.ranges.append(header)
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if cut:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> MirrorServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
