"""A real RTSP camera on 127.0.0.1: Debian's GStreamer RTSP server streaming an H.264 .mp4.

The server runs under the system interpreter (``/usr/bin/python3``, which imports GStreamer
through ``gi``; the project's virtual environment does not), as a subprocess of the test:

    /usr/bin/python3 tests/helpers/rtsp_server.py --port 8554 --clip clip.mp4

serves the clip at ``rtsp://127.0.0.1:8554/cam`` at its own frame rate, from its start for each
client, and prints ``ready`` once it listens. :class:`RtspServer` wraps that process for tests:
``start()``, ``kill()`` (the camera drops off the network: its connections close), ``pause()``
and ``resume()`` (SIGSTOP/SIGCONT: the camera freezes with its connections open, a stall), and
``start()`` again on the same port. :func:`write_clip` writes a long looping clip with the
project's own encoder.

This file is imported by the tests (standard library only at the top) and run by the system
interpreter; keep it importable by both.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
MOUNT = "/cam"
INSTALL = ("apt-get install -y gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gi "
           "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad")


def unavailable() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or ``None`` when it can."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} is absent (the GStreamer RTSP server runs under it)"
    probe = ("import gi; gi.require_version('Gst', '1.0'); "
             "gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "missing = [e for e in ('qtdemux', 'h264parse', 'rtph264pay') "
             "if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))")
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True,
                                timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot be run ({exc})"
    if result.returncode != 0:
        return f"{SYSTEM_PYTHON} cannot import the GStreamer RTSP server; {INSTALL}"
    if result.stdout.strip():
        return f"GStreamer elements {result.stdout.strip()} are missing; {INSTALL}"
    return None


def write_clip(path: Path, seconds: float = 60.0, fps: int = 25, width: int = 320,
               height: int = 180) -> Path:
    """An H.264 .mp4 of a synthetic scene, ``seconds`` long (its 50 frames cycled), so that a
    stream from it outlasts any test; written by the project's :class:`VideoWriter`."""
    from detstream.engines.data.synthetic import SceneConfig, SyntheticScene
    from detstream.engines.data.video import VideoWriter

    config = SceneConfig(width=width, height=height, fps=fps, frames=50, seed=7, objects=4)
    images = [image for image, _ in SyntheticScene(config)]
    images += images[-2:0:-1]  # forwards then backwards: the motion has no jump at the seam
    with VideoWriter(path, width, height, fps, preset="ultrafast") as writer:
        for i in range(int(seconds * fps)):
            writer.write(images[i % len(images)])
    return path


class RtspServer:
    """The RTSP server subprocess, restartable on the same port; ``url`` is the stream."""

    def __init__(self, clip: Path) -> None:
        self.clip = Path(clip)
        with socket.socket() as probe:  # a free port, kept across restarts
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"rtsp://127.0.0.1:{self.port}{MOUNT}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start serving; returns once the server listens."""
        log = self.clip.with_suffix(".rtsp.log")  # a file: a full pipe would block the server
        with open(log, "ab") as stderr:
            self.process = subprocess.Popen(
                [SYSTEM_PYTHON, __file__, "--port", str(self.port), "--clip", str(self.clip)],
                stdout=subprocess.PIPE, stderr=stderr, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.kill()
            said = (line.strip() + " " + log.read_text(errors="replace")[-1000:]).strip()
            raise RuntimeError(f"the RTSP server did not start: {said or 'no answer'}")

    def kill(self) -> None:
        """The camera drops off the network: the process dies and its connections close."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGCONT)  # a paused process dies as well
                self.process.kill()
            self.process.wait(timeout=10)
            self.process.stdout.close()
            self.process = None

    def pause(self) -> None:
        """The camera freezes: connections stay open, nothing more is sent."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def serve(port: int, clip: Path) -> int:
    """Run the server (under the system interpreter) until killed."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{clip}" ! qtdemux ! h264parse '
                       "! rtph264pay name=pay0 pt=96 config-interval=1 )")
    server.get_mount_points().add_factory(MOUNT, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", flush=True)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clip", type=Path, required=True)
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.exit(serve(arguments.port, arguments.clip.resolve()))
