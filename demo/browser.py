"""Headless Chromium for the demo's benchmark and tests: Debian's browser driven by
Playwright, with a fake camera that plays a synthetic scene."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2

from detstream.engines.data.synthetic import SceneConfig, SyntheticScene
from detstream.engines.errors import UserInputError

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required")


def chromium_path() -> str:
    """The Chromium executable (Debian's ``chromium`` package), or a clear error."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise UserInputError("Chromium is not installed; install it with 'apt-get install "
                         "chromium' (make test does)")


def start_button(mode: str) -> str:
    """The selector of a viewer's start button once its script has wired it (``webcam`` or
    ``stream``): the button is in the page before the script that handles it has loaded."""
    return f"#ds-{mode} .ds-viewer[data-ready] .ds-start"


def camera_flags(y4m: Path) -> list[str]:
    """Flags that make Chromium's camera play ``y4m`` and allow it without asking."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}"]


def write_y4m(path: Path, width: int = 640, height: int = 480, fps: int = 30,
              frames: int = 150, seed: int = 5) -> Path:
    """A synthetic scene as a raw YUV 4:2:0 .y4m file (Chromium's fake camera loops it)."""
    config = SceneConfig(width=width, height=height, fps=fps, frames=frames, seed=seed,
                         objects=6, camera_motion=False, min_size=32, max_size_frac=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with tmp.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image, _ in SyntheticScene(config):
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())
    tmp.replace(path)
    return path


def launch(playwright, extra: Sequence[str] = ()):
    """A headless Chromium browser (Playwright's ``Browser``)."""
    return playwright.chromium.launch(executable_path=chromium_path(),
                                      args=[*CHROMIUM_FLAGS, *extra])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoProcess:
    """``detstream demo`` in a child process on a free loopback port, for tests and
    benchmarks: started on entry (waiting until the page answers), stopped on exit."""

    def __init__(self, *args: str, startup: float = 120.0, log: Path | None = None) -> None:
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.startup = startup
        self.log = log
        self.process = None

    def __enter__(self) -> DemoProcess:
        import os
        import subprocess
        import sys
        import time
        import urllib.request

        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", GRADIO_ANALYTICS_ENABLED="False")
        out = self.log.open("wb") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "detstream", "demo", "--port", str(self.port), *self.args],
            stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"detstream demo exited with {self.process.returncode}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                with urllib.request.urlopen(self.url + "detstream/api/status", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"detstream demo did not answer within {self.startup:.0f} s")

    def status(self) -> dict:
        import json
        import urllib.request

        with urllib.request.urlopen(self.url + "detstream/api/status", timeout=10) as reply:
            return json.loads(reply.read())

    def __exit__(self, *exc: object) -> None:
        import subprocess

        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
