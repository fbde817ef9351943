"""What the server knows about its visitors: each page's settings, the sessions running for
it, and the folder its files live in. Read by the status endpoint (``/detstream/api/status``)."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from detstream.stream.draw import DrawConfig
from detstream.stream.session import RunConfig

TRACKERS = ("botsort", "bytetrack", "none")


@dataclass(frozen=True)
class LiveSettings:
    """The page's settings panel; every session of the page follows it from its next frame.

    Attributes:
        model: ``default`` or an ONNX path (checked by :mod:`detstream.demo.guard`).
        names: a class-names file for an ONNX model without names (found beside it).
        backend: ``auto``, ``onnxruntime``, ``torch`` or ``tensorrt``.
        imgsz: model input size (``None``: the model's own).
        conf, iou: detection thresholds.
        classes: class names to keep (empty: all).
        tracker: ``botsort``, ``bytetrack`` or ``none``.
        trails: draw each track's recent path.
        detect_every: run the detector on every K-th frame.
    """

    model: str = "default"
    names: str | None = None
    backend: str = "auto"
    imgsz: int | None = None
    conf: float = 0.25
    iou: float = 0.45
    classes: tuple[str, ...] = ()
    tracker: str = "botsort"
    trails: bool = True
    detect_every: int = 1

    def run_config(self, source: str, overlay: bool = True, **fields) -> RunConfig:
        """The :class:`RunConfig` for ``source`` with these settings (``overlay``: FPS and
        latency drawn into the frames; live pages show their own, measured in the page)."""
        return RunConfig(source=source, model=self.model,
                         names=Path(self.names) if self.names else None, backend=self.backend,
                         imgsz=self.imgsz, conf=self.conf, iou=self.iou,
                         classes=self.classes or None,
                         tracker=None if self.tracker == "none" else self.tracker,
                         detect_every=self.detect_every,
                         draw=DrawConfig(trails=30 if self.trails else 0, overlay=overlay),
                         **fields)

    def applied_to(self, config: RunConfig) -> RunConfig:
        """``config`` with its live fields replaced by these settings."""
        new = self.run_config(config.source, overlay=config.draw.overlay)
        return replace(config, **{name: getattr(new, name) for name in
                                  ("model", "names", "backend", "imgsz", "conf", "iou", "classes",
                                   "tracker", "detect_every", "draw")})


@dataclass
class SessionInfo:
    """One running session (a webcam, a stream or an upload being processed)."""

    id: int
    client: str
    kind: str
    started: float = field(default_factory=time.time)
    state: str = "starting"
    frames: int = 0
    dropped: int = 0
    fps: float = 0.0
    describe: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def as_dict(self) -> dict:
        return {"id": self.id, "client": self.client, "kind": self.kind, "state": self.state,
                "frames": self.frames, "dropped": self.dropped, "fps": round(self.fps, 2),
                "seconds": round(time.time() - self.started, 1), "model": self.describe}


@dataclass
class Client:
    settings: LiveSettings
    version: int = 0
    workdir: Path | None = None


class Registry:
    """Thread-safe registry of pages (by client id) and their sessions."""

    def __init__(self, root: Path, defaults: LiveSettings) -> None:
        self.root = root
        self.defaults = defaults
        self._clients: dict[str, Client] = {}
        self._sessions: dict[int, SessionInfo] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.frames_total = 0

    # ------------------------------------------------------------------ settings
    def _client(self, client: str) -> Client:
        if client not in self._clients:
            self._clients[client] = Client(self.defaults)
        return self._clients[client]

    def settings(self, client: str) -> tuple[LiveSettings, int]:
        with self._lock:
            entry = self._client(client)
            return entry.settings, entry.version

    def update(self, client: str, settings: LiveSettings) -> int:
        """Store new settings; returns their version (sessions compare versions)."""
        with self._lock:
            entry = self._client(client)
            if settings != entry.settings:
                entry.settings = settings
                entry.version += 1
            return entry.version

    def workdir(self, client: str) -> Path:
        """The client's own folder for uploads and outputs (created on first use)."""
        with self._lock:
            entry = self._client(client)
            if entry.workdir is None:
                safe = "".join(c for c in client if c.isalnum() or c in "-_")[:64] or "anon"
                entry.workdir = self.root / "sessions" / safe
            entry.workdir.mkdir(parents=True, exist_ok=True)
            return entry.workdir

    # ------------------------------------------------------------------ sessions
    def open(self, client: str, kind: str) -> SessionInfo:
        with self._lock:
            info = SessionInfo(next(self._ids), client, kind)
            self._sessions[info.id] = info
            return info

    def close(self, info: SessionInfo) -> None:
        with self._lock:
            self._sessions.pop(info.id, None)

    def count_frame(self, info: SessionInfo, fps: float, dropped: int) -> None:
        info.frames += 1
        info.fps, info.dropped = fps, dropped
        with self._lock:
            self.frames_total += 1

    def forget(self, client: str) -> None:
        """The page closed: stop its sessions and delete its files."""
        with self._lock:
            entry = self._clients.pop(client, None)
            for info in self._sessions.values():
                if info.client == client:
                    info.stop.set()
        if entry is not None and entry.workdir is not None:
            shutil.rmtree(entry.workdir, ignore_errors=True)

    def active(self) -> list[SessionInfo]:
        with self._lock:
            return list(self._sessions.values())

    def status(self) -> dict:
        sessions = [info.as_dict() for info in self.active()]
        return {"active_sessions": sum(s["state"] == "running" for s in sessions),
                "sessions": sessions, "clients": len(self._clients),
                "frames_total": self.frames_total, "cpu_seconds": round(time.process_time(), 3)}
