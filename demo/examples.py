"""The example video offered in the page: a short synthetic scene the default model knows,
rendered once per server (no download)."""

from __future__ import annotations

import threading
from pathlib import Path

from detstream.engines.data.synthetic import SceneConfig
from detstream.engines.data.synthetic.sequence import write_sequence

#: 8 s of a panning 640x360 scene with objects big enough for the default model.
EXAMPLE = SceneConfig(width=640, height=360, fps=30, frames=240, seed=11, objects=8,
                      camera_motion=True, min_size=24, max_size_frac=0.35)


class ExampleVideo:
    """Renders :data:`EXAMPLE` in the background at start-up; :meth:`path` waits for it."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "example"
        self._done = threading.Event()
        self._error: BaseException | None = None
        threading.Thread(target=self._render, name="example-video", daemon=True).start()

    def _render(self) -> None:
        try:
            write_sequence(self.folder, EXAMPLE)
        except BaseException as exc:  # reported when the example is asked for
            self._error = exc
        finally:
            self._done.set()

    def path(self, timeout: float = 120.0) -> Path:
        if not self._done.wait(timeout) or self._error is not None:
            raise RuntimeError(f"the example video could not be rendered: {self._error}")
        return self.folder / "video.mp4"
