"""Headless Chromium for the demo's benchmark and tests: Debian's browser driven by
Playwright, with a fake camera that plays a synthetic scene."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2

from engines.data.synthetic import SceneConfig, SyntheticScene
from engines.errors import UserInputError

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
