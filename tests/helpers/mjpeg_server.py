"""A real HTTP MJPEG server on 127.0.0.1 (multipart/x-mixed-replace), as IP cameras serve.

It streams JPEG-encoded frames of a synthetic scene at a fixed rate to every client, and can be
stopped and started again on the same port (to test reconnection), or stalled: ``stall()``
keeps every connection open and accepts new ones but sends nothing more until ``resume()``, as
a camera that hangs.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "detstreamframe"


def _frames(width: int, height: int) -> list[bytes]:
    from detstream.engines.data.synthetic import SceneConfig, SyntheticScene

    config = SceneConfig(width=width, height=height, fps=25, frames=50, seed=5, objects=4)
    return [cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
            for image, _ in SyntheticScene(config)]


class MjpegServer:
    """``start()`` / ``stop()`` a loopback MJPEG stream at ``url``."""

    def __init__(self, fps: float = 25.0, width: int = 320, height: int = 180) -> None:
        self.fps = fps
        self.jpegs = _frames(width, height)
        with socket.socket() as probe:  # a free port, kept across restarts
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.sent = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._stalled = threading.Event()

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                return None

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type",
                                 f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                i = 0
                try:
                    while server._running.is_set():
                        if server._stalled.is_set():  # connected, silent
                            time.sleep(0.01)
                            continue
                        jpeg = server.jpegs[i % len(server.jpegs)]
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode())
                        self.wfile.write(jpeg + b"\r\n")
                        server.sent += 1
                        i += 1
                        time.sleep(1.0 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._running.set()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stall(self) -> None:
        """Stop sending, keeping the connections open (new ones get headers, then silence)."""
        self._stalled.set()

    def resume(self) -> None:
        self._stalled.clear()

    def stop(self) -> None:
        """Close the listening socket and every open stream."""
        self._running.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def black_frame() -> np.ndarray:
    return np.zeros((180, 320, 3), np.uint8)
