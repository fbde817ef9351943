"""Event clips on the page: the MP4 the pipeline's :class:`ClipSink` writes around each
counting-line or area event, for uploads (offered with the results) and for live sessions
(listed under the live viewer's events and served by ``GET /detstream/clips/...``).

A live session with lines or areas writes its clips into a folder of its own inside the
visitor's work folder (:func:`live_clip_folder`), kept across the restarts that new rules
cause, deleted with the rest of the visitor's files when the page closes. The page is told of
each clip once it is finished (``post`` seconds after its last event): :class:`ClipFeed`
adds a compact ``clips`` list to the next result's header. The download route serves a clip
only from the folder of the visitor and session named in its address (:func:`clip_path`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from detstream.demo.guard import inside
from detstream.demo.state import Registry
from detstream.stream.run_config import RunConfig
from detstream.stream.sinks.base import Sink
from detstream.stream.sinks.clips import ClipSink

#: Seconds of video kept before and after each event in a clip made on the page (uploads
#: and live sessions alike): enough to see the crossing, short enough to fetch at once.
CLIP_PRE_S, CLIP_POST_S = 2.0, 2.0
#: Clips a live viewer lists, newest first.
CLIPS_SHOWN = 20
#: Clip files a live session keeps on disk; older ones are deleted as new ones finish, so a
#: busy camera left running cannot fill the server's disk (the page lists fewer than this).
CLIPS_KEPT = 50
#: Where the live clips are served (below the page's own address).
CLIP_ROUTE = "detstream/clips"
_FOLDER = "live-clips-"


def live_clip_folder(workdir: Path, session: int) -> Path:
    """The folder of one live session's clips inside the visitor's work folder."""
    return workdir / f"{_FOLDER}{int(session)}"


def with_live_clips(config: RunConfig, folder: Path) -> RunConfig:
    """``config`` writing its event clips into ``folder`` when it has lines or areas (and
    none otherwise: without rules there are no events, and the encoder would cost every
    frame for nothing)."""
    ruled = bool(config.lines or config.areas)
    return replace(config, clips=folder if ruled else None, clip_pre=CLIP_PRE_S,
                   clip_post=CLIP_POST_S)


def clip_url(client: str, session: int, name: str) -> str:
    """The clip's address, relative to the page (the viewer resolves it against its base)."""
    return f"{CLIP_ROUTE}/{quote(client, safe='')}/{int(session)}/{quote(name, safe='')}"


def clip_entry(record: dict, url: str) -> dict:
    """A finished clip as the page lists it: ``name``, ``url``, ``seconds``, how many
    ``events`` it shows, their ``kinds`` and ``rules`` (each once, in order), and the
    ``track`` and ``class`` of the object it follows (a clip follows one track: later
    events of that track extend it). ``record`` is one of :meth:`ClipSink.report`'s
    ``clips``."""
    events = record.get("events") or [{}]
    first = events[0]
    return {"name": Path(record["path"]).name, "url": url, "seconds": record["seconds"],
            "events": len(record.get("events") or ()),
            "kinds": list(dict.fromkeys(e.get("event", "") for e in events)),
            "rules": list(dict.fromkeys(e.get("rule", "") for e in events)),
            "track": first.get("track_id"), "class": first.get("class")}


class ClipFeed:
    """Tells one live connection's page of the clips its runs finish, and keeps at most
    ``kept`` of them on disk. It outlives the runs of the connection (a rules change starts
    a new run, writing into the same folder).

    :meth:`take` is called with each frame's sinks (from the pipeline's output thread), and
    once more after a run has closed (its last clips are finalised by the close); it reads
    the clip sink's report only when its count of finished clips has changed.
    :meth:`header` hands the clips not yet sent to the next result's header.

    Args:
        client: the page's client id; session: the live session's id (both in the URLs).
        kept: clip files kept on disk (:data:`CLIPS_KEPT`).
    """

    def __init__(self, client: str, session: int, kept: int = CLIPS_KEPT) -> None:
        self.client = client
        self.session = session
        self.kept = kept
        self._sink: ClipSink | None = None
        self._seen = 0  # clips of that sink already taken
        self._new: list[dict] = []
        self._on_disk: deque[Path] = deque()

    def take(self, sinks: Sequence[Sink]) -> None:
        """Keep the clips finished since the last call (nothing to do on most frames)."""
        sink = next((s for s in sinks if isinstance(s, ClipSink)), None)
        if sink is None:
            return
        if sink is not self._sink:  # a new run: its sink counts from zero
            self._sink, self._seen = sink, 0
        if sink.clips == self._seen:
            return
        records = sink.report()["clips"]
        fresh = records[len(records) - min(sink.clips - self._seen, len(records)):]
        self._seen = sink.clips
        for record in fresh:
            name = Path(record["path"]).name
            self._new.append(clip_entry(record, clip_url(self.client, self.session, name)))
            self._on_disk.append(Path(record["path"]))
        while len(self._on_disk) > self.kept:
            self._on_disk.popleft().unlink(missing_ok=True)
        del self._new[:-CLIPS_SHOWN]  # the page shows no more than these

    def header(self) -> dict:
        """``{"clips": [...]}`` with the clips not sent yet, oldest first (empty when none)."""
        if not self._new:
            return {}
        out, self._new = self._new, []
        return {"clips": out}


def clip_path(registry: Registry, client: str, session: str, name: str) -> Path | None:
    """The clip file that ``GET /detstream/clips/{client}/{session}/{name}`` serves, or
    ``None`` (answered 404) unless it is an ``.mp4`` file directly inside that visitor's
    live clip folder of that session: a name with a path separator or ``..``, a folder of
    another visitor, or a symbolic link leading out are all refused."""
    if not session.isdigit() or not name.endswith(".mp4") or name.startswith("."):
        return None
    if "/" in name or "\\" in name or ".." in name or "\0" in name:
        return None
    workdir = registry.existing_workdir(client)  # never makes a folder for a stranger's id
    if workdir is None:
        return None
    folder = live_clip_folder(workdir, int(session))
    real = inside(folder / name, [folder])
    if real is None or real.parent != Path(folder).resolve() or not real.is_file():
        return None
    return real
