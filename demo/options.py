"""What the demo server is allowed to do, fixed when it starts (``detstream demo`` flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detstream.stream.run_config import RunConfig


@dataclass(frozen=True)
class DemoOptions:
    """Server settings.

    Attributes:
        host, port: where the page is served (127.0.0.1 unless asked otherwise).
        start: what the page's settings start with (the options ``detstream demo`` shows:
            model, backend, input size, tracker, confidence); the visitor can change each.
        allow_streams: offer the Stream tab (server-side RTSP/HTTP URLs and allowed files).
        allow_dirs: folders whose files the page may read (ONNX models, videos for the Stream
            tab); nothing outside them is ever opened on a visitor's behalf.
        max_upload_mb: the largest upload accepted.
        max_sessions: live or upload sessions running at once per backend; later ones wait
            in line and see their place.
        share: ask Gradio for a public share link.
        fleet: the endpoint of a running ``detstream fleet run`` to show in a Fleet tab.
        workdir: where uploads and outputs live (``None``: a new temporary folder, deleted
            when the server exits).
    """

    host: str = "127.0.0.1"
    port: int = 7860
    start: RunConfig = field(default_factory=RunConfig)
    allow_streams: bool = False
    allow_dirs: tuple[Path, ...] = ()
    max_upload_mb: int = 200
    max_sessions: int = 2
    share: bool = False
    workdir: Path | None = None
    fleet: str | None = None
