"""Live sessions over a WebSocket: the visitor's webcam frames in, annotated frames out; or a
server-side stream played to the page with the same overlay.

Protocol (``/detstream/ws/live?client=ID``). The page sends a JSON ``start`` message
(``{"type": "start", "mode": "webcam"}`` or ``{"mode": "stream", "uri": ...}``), then, for the
webcam, binary messages: a little-endian uint32 frame id followed by one JPEG. The server
answers with JSON status messages (``queued`` with the place in line, ``started``,
``dropped`` with the frame ids replaced by newer ones, ``error``, ``ended``) and binary
results: uint32 frame id, uint32 length of a JSON header, the header, then the annotated
frame as JPEG. The header holds the reported boxes as ``[x1, y1, x2, y2, track id, class,
score]`` in frame pixels, counts, ``timings`` (what the stages did on this frame: with the
detector beside the frames' path it holds no detector time), and the stage table the page
shows: ``stages``, each stage's own work over the last two seconds (mean ms per frame it
worked on, frames per second it worked on; the detector's ``preprocess`` and ``infer``
included, and ``jpeg``, this module's encoding of the result), and ``waits`` apart (the track
stage holding a frame for its detections; capture waiting for the page's next frame)
(:class:`~detstream.stream.pipeline.stage_times.RecentStages`).

Counting lines and watched areas (:mod:`detstream.demo.rules`): the header adds
``rule_events`` (the rule events since the last result, as the JSON Lines write them) and
``analytics`` (counts per line and area) when they changed, at most four times a second or
at once with an event. The rules are the page's settings; ``started`` names them. A running
session cannot take new rules, so a change ends its run and starts another with them
(``restarted``, counts from zero): frames the page sent to the old run are not answered, and
the page forgets them.

Event clips (:mod:`detstream.demo.clips`): a session with lines or areas writes an MP4 around
each event into a folder of its own in the visitor's work folder (kept across its restarts);
the header adds ``clips`` (name, download URL, seconds, the events' kinds, rules and track)
with the first result after a clip is finished, and the clips the end of a run finishes come
in a ``clips`` status message.

Why a WebSocket carrying JPEG and not WebRTC: on this project's 2-core machines the measured
WebSocket path (two frames in flight, newest frame wins) showed 30 fps with capture-to-display
p50 about 50 ms, and cost the server about 9 % of a core; aiortc's WebRTC cost about 24 % of a
core in VP8 alone and added about 33 ms in its jitter buffer (p50 80-118 ms). BENCHMARKS.md
has ``detstream bench demo``'s figures for this transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketDisconnect

from detstream.demo.admission import Admission
from detstream.demo.clips import ClipFeed, live_clip_folder, with_live_clips
from detstream.demo.guard import check_model, check_stream
from detstream.demo.rules import AnalyticsFeed, rules_differ, rules_view, with_rules_of
from detstream.demo.state import LiveSettings, Registry, SessionInfo
from detstream.engines.errors import DetstreamError, UserInputError
from detstream.stream.pipeline.metrics import RunMetrics
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.pipeline.stage_times import RecentStages
from detstream.stream.run_config import RunConfig
from detstream.stream.serialize import detections_to_json
from detstream.stream.session import BackendCache, Session, build
from detstream.stream.sinks.base import Sink
from detstream.stream.sources import PushSource

JPEG_QUALITY = 80
#: The webcam's source: live, newest frame wins (so the pipeline runs its camera-rate
#: schedule with the default detect-every 0, as ``detstream run`` on a camera), not paced:
#: the page stops sending while a few frames are unanswered, so a fixed schedule's
#: just-in-time capture takes the newest without waiting for a fresher one.
WEBCAM_SOURCE = "push://?fps=30&paced=0"
_HEADER = struct.Struct("<I")
_RESULT = struct.Struct("<II")


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def split_frame(message: bytes) -> tuple[int, memoryview | None]:
    """``(frame id, JPEG bytes)`` of a binary webcam message (``None``: too short)."""
    if len(message) <= _HEADER.size:
        return -1, None
    (seq,) = _HEADER.unpack_from(message)
    return seq, memoryview(message)[_HEADER.size:]


def result_header(packet: FramePacket, extra: dict) -> dict:
    """The JSON header of one finished packet's result (see the module docstring);
    ``extra`` adds fields (``fps``, ``dropped``, ``stages``, ``waits``, ``analytics``,
    ``rule_events``)."""
    # The page takes each box as one short row (the file's dicts, at the page's precision).
    boxes = [[*item["box"], item["track_id"], item["class"], item["score"]]
             for item in detections_to_json(packet.detections, box_digits=1, score_digits=3)]
    return {"timings": {k: round(v, 2) for k, v in packet.timings.items()},
            "objects": len(boxes), "boxes": boxes, "index": packet.index, **extra}


def result_message(packet: FramePacket, extra: dict, jpeg: bytes | None = None) -> bytes:
    """The binary result for one finished packet (see the module docstring); ``jpeg``: the
    annotated frame already encoded (default: encoded here)."""
    if jpeg is None:
        jpeg = encode_jpeg(packet.annotated if packet.annotated is not None else packet.image)
    header = json.dumps(result_header(packet, extra), separators=(",", ":")).encode()
    seq = packet.tag if isinstance(packet.tag, int) else packet.index
    return _RESULT.pack(seq & 0xFFFFFFFF, len(header)) + header + jpeg


class ResultMaker:
    """Makes one session's result messages: encodes each frame (timed, as the ``jpeg``
    stage in the pipeline's metrics) and adds the stage table over the last two seconds.
    Called from the pipeline's output thread only.

    Args:
        live: the source is live (capture's time is shown as a wait for the next frame).
    """

    def __init__(self, live: bool = True) -> None:
        self.recent = RecentStages(live=live)

    def __call__(self, packet: FramePacket, metrics: RunMetrics, extra: dict) -> bytes:
        """The message for ``packet``; ``metrics``: its pipeline's."""
        start = time.perf_counter()
        jpeg = encode_jpeg(packet.annotated if packet.annotated is not None else packet.image)
        metrics.add_stage("jpeg", (time.perf_counter() - start) * 1000.0)
        return result_message(packet, {**extra, **self.recent(metrics)}, jpeg)


def session_config(settings: LiveSettings, mode: str, source: str,
                   clips: Path | None = None) -> RunConfig:
    """The run a live session starts: the page's settings on ``source``, no overlay (the page
    shows its own figures); a stream is played live; with lines or areas, event clips into
    ``clips`` (the session's folder; none when ``None``). Nothing else is set here: the
    schedule (``detect_every``, 0 by default: the camera-rate schedule on a live source that
    drops frames) is the page's setting."""
    config = settings.run_config(source, overlay=False,
                                 live=True if mode == "stream" else None)
    return config if clips is None else with_live_clips(config, clips)


def same_origin(ws: HTTPConnection) -> bool:
    """True unless a browser says the connection (a WebSocket or a request) comes from a page
    of another site."""
    origin = ws.headers.get("origin")
    if not origin:
        return True  # not a browser (scripts, tests)
    host = ws.headers.get("x-forwarded-host") or ws.headers.get("host", "")
    return urlparse(origin).netloc.lower() == host.lower()


class LiveHub:
    """Runs the live sessions of one server."""

    def __init__(self, registry: Registry, admission: Admission, backends: BackendCache,
                 allow_dirs, allow_streams: bool) -> None:
        self.registry = registry
        self.admission = admission
        self.backends = backends
        self.allow_dirs = list(allow_dirs)
        self.allow_streams = allow_streams

    async def handle(self, ws: WebSocket) -> None:
        """One page's live connection, from ``start`` to close."""
        if not same_origin(ws):  # another site's page may not drive this server
            await ws.close(code=1008)
            return
        await ws.accept()
        client = ws.query_params.get("client") or "anonymous"
        try:
            start = json.loads(await ws.receive_text())
        except (WebSocketDisconnect, ValueError, KeyError, RuntimeError):
            return
        mode = start.get("mode")
        info = self.registry.open(client, mode if mode in ("webcam", "stream") else "?")
        try:
            await self._run(ws, client, start, info)
        except WebSocketDisconnect:
            pass
        except DetstreamError as exc:
            await _send_json(ws, {"type": "error", "message": str(exc)})
        finally:
            info.stop.set()
            self.registry.close(info)
            with contextlib.suppress(Exception):
                await ws.close()

    async def _run(self, ws: WebSocket, client: str, start: dict, info: SessionInfo) -> None:
        mode = start.get("mode")
        if mode == "stream":
            if not self.allow_streams:
                raise UserInputError("streams are off on this server (start it with "
                                     "--allow-streams)")
            source = check_stream(str(start.get("uri", "")), self.allow_dirs)
        elif mode == "webcam":
            source = WEBCAM_SOURCE
        else:
            raise UserInputError(f"unknown mode {mode!r}; expected webcam or stream")
        settings, version = self.registry.settings(client)
        check_model(settings.model, self.allow_dirs)
        ticket = self.admission.join(settings.backend)  # one line per backend
        try:
            info.state = "queued"
            while (place := self.admission.poll(ticket)) > 0:
                await _send_json(ws, {"type": "queued", "position": place})
                if await _closed_within(ws, 0.5, info):
                    return
            await self._serve(ws, client, mode, source, settings, version, info)
        finally:
            self.admission.leave(ticket)

    async def _serve(self, ws: WebSocket, client: str, mode: str, source: str,
                     settings: LiveSettings, version: int, info: SessionInfo) -> None:
        """Run the session, and run it again when the page's rules change, until the page
        says stop or goes, the stream ends or a stage fails."""
        loop = asyncio.get_running_loop()
        outbox: asyncio.Queue[bytes | dict] = asyncio.Queue()
        pending = [0]  # results queued for sending (stream mode keeps only the newest)
        # One clip folder and feed for the whole connection: a rules change restarts the run,
        # and the clips made before it stay listed and downloadable.
        folder = live_clip_folder(self.registry.workdir(client), info.id)
        clip_feed = ClipFeed(client, info.id)

        def send_later(item: bytes | dict) -> None:
            pending[0] += 1
            outbox.put_nowait(item)

        def open_session(config: RunConfig) -> Session:
            """A session whose results go to this page (built in a worker thread)."""
            session_box: list[Session] = []
            make_result = ResultMaker(live=True)  # both modes play their source live
            feed = AnalyticsFeed()

            def on_packet(packet: FramePacket) -> None:
                if not session_box:
                    return  # not before build() has returned (no frame comes before start())
                pipeline = session_box[0].pipeline
                feed.take(packet)  # even from a frame skipped below: events are not lost
                clip_feed.take(pipeline.sinks)  # the sinks have written this frame already
                fps = pipeline.metrics.recent_fps()
                dropped = pipeline.source.stats.frames_dropped
                self.registry.count_frame(info, fps, dropped)
                if mode == "stream" and pending[0] > 2:
                    return  # the page is behind: skip this frame rather than queue it
                extra = {"fps": round(fps, 1), "dropped": dropped,
                         **feed.header(pipeline.options.rules), **clip_feed.header()}
                message = make_result(packet, pipeline.metrics, extra)
                loop.call_soon_threadsafe(send_later, message)

            session = build(config, None, on_packet, (), self.backends)
            session_box.append(session)
            return session

        config = session_config(settings, mode, source, folder)
        current = _Feeding()
        sender = asyncio.create_task(self._send_loop(ws, outbox, pending))
        reader = asyncio.create_task(self._read(ws, current, info))
        session: Session | None = None
        closed = False  # the session's pipeline is closed already
        try:
            kind = "started"
            while True:
                info.state = "opening"
                session, closed = await asyncio.to_thread(open_session, config), False
                pipeline = session.pipeline
                info.describe = session.describe
                info.state = "running"
                pipeline.start()
                if mode == "webcam":
                    current.source = pipeline.source
                await _send_json(ws, {"type": kind, "model": session.describe,
                                      "classes": list(pipeline.predictor.spec.class_names),
                                      "rules": rules_view(session.config)})
                restart = await self._follow(ws, client, session, version, info, reader)
                if restart is None:
                    break
                config, version = restart
                config = with_live_clips(config, folder)  # clips only while there are rules
                # The old run ends here; frames arriving meanwhile are answered as dropped.
                current.source = None
                info.state = "restarting"
                pipeline.stop("rules changed")
                await asyncio.to_thread(pipeline.close)
                closed = True
                await self._send_clips(ws, clip_feed, pipeline.sinks)
                if pipeline.error is not None:
                    break  # its error goes to the page below
                session, kind = None, "restarted"
        finally:
            info.state = "closing"
            current.source = None
            reader.cancel()
            if reader.done() and not reader.cancelled():
                reader.exception()  # seen: a disconnection was raised above or ends anyway
            if session is not None and not closed:
                session.pipeline.stop("page closed")
                await asyncio.to_thread(session.pipeline.close)
            await asyncio.sleep(0)  # let the sender flush what is queued
            sender.cancel()
            with contextlib.suppress(Exception):
                if session is not None:
                    await self._send_clips(ws, clip_feed, session.pipeline.sinks)
                    error = session.pipeline.error
                    if error is not None:
                        await _send_json(ws, {"type": "error", "message": str(error.__cause__
                                                                              or error)})
                    await _send_json(ws, {"type": "ended",
                                          "report": session.pipeline.report()})

    async def _read(self, ws: WebSocket, current: _Feeding, info: SessionInfo) -> None:
        """The page's messages, until it says stop (returns) or goes away (raises
        ``WebSocketDisconnect``): webcam frames go to the running session's source; a frame
        with no session to take it (a restart, or a stream) is answered as dropped."""
        while not info.stop.is_set():
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("text") is not None:
                if json.loads(message["text"]).get("type") == "stop":
                    return
                continue
            data = message.get("bytes")
            if not data:
                continue
            captured = time.perf_counter()
            seq, jpeg = split_frame(data)
            source = current.source
            if source is None or jpeg is None:
                dropped = [seq]
            else:
                # Decoded by the pipeline only if it takes this frame: one replaced by a
                # newer frame first costs nothing.
                dropped = source.push(jpeg, tag=seq, captured=captured)
                dropped += source.take_unreadable()
            if dropped:
                await _send_json(ws, {"type": "dropped", "ids": dropped})

    async def _follow(self, ws: WebSocket, client: str, session: Session, version: int,
                      info: SessionInfo, reader: asyncio.Task
                      ) -> tuple[RunConfig, int] | None:
        """Watch a running session: apply the page's settings as they change (from the next
        frame on). Returns the config to restart with when the rules changed (a running
        session cannot take them), or ``None`` when the session is over: the page said stop
        (its disconnection is raised), the stream ended or a stage failed."""
        pipeline = session.pipeline
        while not info.stop.is_set():
            done, _ = await asyncio.wait({reader}, timeout=0.1)
            if done:
                reader.result()  # raises WebSocketDisconnect when the page went away
                return None
            if pipeline.wait(0) or pipeline.error is not None:
                return None  # the stream ended, or a failed stage ends the session
            settings, now = self.registry.settings(client)
            if now == version:
                continue
            version = now
            try:
                check_model(settings.model, self.allow_dirs)
                config = settings.applied_to(session.config)
                if rules_differ(config, session.config):
                    return config, version
                # Else the rules are the same (a loitering threshold alone, with no area to
                # apply it to, stays the run's: a running session cannot take it).
                config = with_rules_of(config, session.config)
                await asyncio.to_thread(session.reconfigure, config)
            except DetstreamError as exc:
                await _send_json(ws, {"type": "error", "message": str(exc), "fatal": False})
                continue
            info.describe = session.describe
            await _send_json(ws, {"type": "settings", "model": session.describe,
                                  "classes": list(pipeline.predictor.spec.class_names)})
        return None

    @staticmethod
    async def _send_clips(ws: WebSocket, feed: ClipFeed, sinks: Sequence[Sink]) -> None:
        """Tell the page of the clips a run's close has finished (those still open end
        where the run ended), and of any not sent with a result yet."""
        feed.take(sinks)
        clips = feed.header()
        if clips:
            await _send_json(ws, {"type": "clips", **clips})

    async def _send_loop(self, ws: WebSocket, outbox: asyncio.Queue, pending: list[int]) -> None:
        while True:
            item = await outbox.get()
            pending[0] -= 1
            if isinstance(item, dict):
                await ws.send_text(json.dumps(item))
            else:
                await ws.send_bytes(item)


@dataclass
class _Feeding:
    """Where a webcam connection's frames go now: the running session's source, or
    ``None`` while there is none (opening, restarting, stream mode)."""

    source: PushSource | None = None


async def _send_json(ws: WebSocket, message: dict) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps(message))


async def _closed_within(ws: WebSocket, seconds: float, info: SessionInfo) -> bool:
    """Wait up to ``seconds``; True when the page went away meanwhile."""
    try:
        message = await asyncio.wait_for(ws.receive(), timeout=seconds)
    except asyncio.TimeoutError:
        return info.stop.is_set()
    return message["type"] == "websocket.disconnect" or info.stop.is_set()

