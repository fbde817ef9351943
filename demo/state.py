"""What the server knows about its visitors: each page's settings, the sessions running for
it, and the folder its files live in. Read by the status endpoint (``/detstream/api/status``)."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from detstream.stream.options import options_of, value_of, with_values
from detstream.stream.run_config import RunConfig

#: The options the page's settings panel shows, from their one declaration.
PAGE_OPTIONS = options_of(RunConfig, "page")


class LiveSettings:
    """The page's settings panel: the page options (:data:`PAGE_OPTIONS`) of a
    :class:`RunConfig`, checked by it. Every session of the page follows them from its next
    frame.

    ``LiveSettings(conf=0.5)`` starts from the declared defaults; ``base`` gives other
    starting values (what ``detstream demo`` was started with).
    """

    __slots__ = ("config",)

    def __init__(self, base: RunConfig | None = None, **values: Any) -> None:
        unknown = sorted(set(values) - set(PAGE_OPTIONS))
        if unknown:
            raise TypeError(f"{unknown[0]!r} is not a setting of the page")
        self.config = with_values(base or RunConfig(), **values)

    def __getattr__(self, name: str) -> Any:
        if name in PAGE_OPTIONS:
            return value_of(self.config, name)
        raise AttributeError(name)

    @classmethod
    def from_controls(cls, base: RunConfig, **controls: Any) -> LiveSettings:
        """Settings from the panel's control values, as Gradio gives them: numbers as floats,
        ``imgsz`` 0 for the model's own, ``trails`` a checkbox (on: the declared trail
        length), ``classes`` a list.

        Raises:
            UserInputError: a value the option refuses, in the option's own words.
        """
        values = dict(controls)
        if "imgsz" in values:
            values["imgsz"] = _whole(values["imgsz"]) or None
        if "detect_every" in values:
            values["detect_every"] = _whole(values["detect_every"])
        if "trails" in values and isinstance(values["trails"], bool):
            values["trails"] = PAGE_OPTIONS["trails"].default if values["trails"] else 0
        if "classes" in values:
            values["classes"] = tuple(values["classes"] or ()) or None
        return cls(base, **values)

    def values(self) -> dict[str, Any]:
        """Each page option's value, by name."""
        return {name: value_of(self.config, name) for name in PAGE_OPTIONS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LiveSettings) and self.values() == other.values()

    def __repr__(self) -> str:
        return f"LiveSettings({self.values()})"

    def run_config(self, source: str, overlay: bool = True, **fields: Any) -> RunConfig:
        """The :class:`RunConfig` for ``source`` with these settings (``overlay``: FPS and
        latency drawn into the frames; live pages show their own, measured in the page)."""
        config = with_values(self.config, overlay=overlay)
        return replace(config, source=source, **fields)

    def applied_to(self, config: RunConfig) -> RunConfig:
        """``config`` with its page options replaced by these settings."""
        return with_values(config, **self.values())


def _whole(value: Any) -> Any:
    """A slider's or dropdown's whole number (Gradio gives ``3.0``), anything else as is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


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

    def amend(self, client: str, change: Callable[[LiveSettings], LiveSettings]
              ) -> tuple[LiveSettings, int]:
        """Replace the page's settings by ``change(current)`` in one step, so that two
        changes at once (a rule drawn while a slider moves) both stay; returns the new
        settings and their version. ``change`` may raise: nothing is stored then."""
        with self._lock:
            entry = self._client(client)
            settings = change(entry.settings)
            if settings != entry.settings:
                entry.settings = settings
                entry.version += 1
            return entry.settings, entry.version

    def workdir(self, client: str) -> Path:
        """The client's own folder for uploads and outputs (created on first use)."""
        with self._lock:
            entry = self._client(client)
            if entry.workdir is None:
                safe = "".join(c for c in client if c.isalnum() or c in "-_")[:64] or "anon"
                entry.workdir = self.root / "sessions" / safe
            entry.workdir.mkdir(parents=True, exist_ok=True)
            return entry.workdir

    def existing_workdir(self, client: str) -> Path | None:
        """The folder of a page that has made one, else ``None``. Unlike :meth:`workdir`
        it creates nothing: a download address with a made-up id leaves no trace."""
        with self._lock:
            entry = self._clients.get(client)
            return entry.workdir if entry is not None else None

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
