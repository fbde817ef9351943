"""An uploaded video through the same pipeline as ``detstream run`` (file semantics: every
frame, no drops), with live progress, a preview of the output as it is made, and the results
to download."""

from __future__ import annotations

import html
import json
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detstream.demo.admission import Admission
from detstream.demo.clips import CLIP_POST_S, CLIP_PRE_S
from detstream.demo.guard import check_model
from detstream.demo.rules import EVENTS_SHOWN, rules_differ, upload_rules_markdown, with_rules_of
from detstream.demo.state import Registry, SessionInfo
from detstream.engines.errors import DetstreamError, UserInputError
from detstream.stream.analytics import RuleEvent
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.session import BackendCache, build
from detstream.stream.sinks import SummarySink

PREVIEW_EVERY = 2.0  # seconds between preview frames in the page
STATUS_EVERY = 1.0  # seconds between progress updates


@dataclass
class Update:
    """What the page shows; ``None`` leaves a part as it is."""

    status: str | None = None
    preview: np.ndarray | None = None
    video: str | None = None
    files: list[str] | None = None
    summary: str | None = None


#: Clips offered for download (the first ones; every clip is listed in the stats file).
CLIPS_OFFERED = 20


def clips_markdown(count: int) -> str:
    """A line under the summary about the event clips offered with the results."""
    if not count:
        return ""
    shown = min(count, CLIPS_OFFERED)
    which = f"the first {shown} of {count}" if count > shown else f"{count}"
    return (f"\n\n**Event clips:** {which} with the results below, each an MP4 from "
            f"{CLIP_PRE_S:g} s before its event to {CLIP_POST_S:g} s after.")


def status_html(kind: str, text: str, done: int = 0, total: int | None = None) -> str:
    """The status line (``kind``: info, progress, ok, error) with a progress bar."""
    bar = ""
    if kind == "progress":
        value = f' value="{done}" max="{total}"' if total else ""
        bar = f'<progress class="ds-progress"{value}></progress>'
    return (f'<div class="ds-status ds-{kind}" data-kind="{kind}">{bar}'
            f'<span class="ds-status-text">{html.escape(text)}</span></div>')


def _progress_text(done: int, total: int | None, fps: float, elapsed: float) -> str:
    text = f"{done} / {total} frames" if total else f"{done} frames"
    text += f" · {fps:.1f} FPS"
    if total and fps > 0:
        text += f" · {max(0.0, (total - done) / fps):.0f} s left"
    return text + f" · {elapsed:.0f} s"


def summary_markdown(report: dict, summary: dict) -> str:
    """The short account shown under the video."""
    lines = [f"**{summary['frames']} frames** at **{report['fps']:.1f} FPS** · "
             f"**{summary['track_count']} tracks**", "",
             "| class | boxes | tracks |", "|---|---|---|"]
    for name in sorted(set(summary["boxes"]) | set(summary["tracks"])):
        lines.append(f"| {name} | {summary['boxes'].get(name, 0)} | "
                     f"{summary['tracks'].get(name, 0)} |")
    if summary["longest"]:
        lines += ["", "Longest tracks: " + ", ".join(
            f"#{t['id']} {t['class']} ({t['frames']} frames)" for t in summary["longest"])]
    return "\n".join(lines)


def _checked_upload(path: str | None, max_bytes: int) -> Path:
    if not path:
        raise UserInputError("choose a video file first (or try the example)")
    file = Path(path)
    if not file.is_file():
        raise UserInputError("the upload did not arrive; try again")
    size = file.stat().st_size
    if size == 0:
        raise UserInputError(f"{file.name} is empty (0 bytes); choose a video file")
    if size > max_bytes:
        raise UserInputError(f"{file.name} is {size / 1e6:.0f} MB; this server accepts up to "
                             f"{max_bytes / 1e6:.0f} MB")
    return file


def process_video(path: str | None, client: str, registry: Registry, admission: Admission,
                  backends: BackendCache, allow_dirs, max_bytes: int) -> Iterator[Update]:
    """Run an uploaded video and report as it goes (a generator of page updates)."""
    info = registry.open(client, "upload")
    ticket = None
    try:
        file = _checked_upload(path, max_bytes)
        settings, version = registry.settings(client)
        check_model(settings.model, allow_dirs)
        ticket = admission.join(settings.backend)
        info.state = "queued"
        while (place := admission.poll(ticket)) > 0:
            yield Update(status=status_html("info", f"waiting: number {place} in line"))
            if info.stop.wait(0.5):
                return
        yield from _run(file, client, registry, backends, allow_dirs, info, version)
    except DetstreamError as exc:
        yield Update(status=status_html("error", str(exc)))
    finally:
        info.stop.set()
        if ticket is not None:
            admission.leave(ticket)
        registry.close(info)


def _run(file: Path, client: str, registry: Registry, backends: BackendCache, allow_dirs,
         info: SessionInfo, version: int) -> Iterator[Update]:
    settings, _ = registry.settings(client)
    work = registry.workdir(client)
    out = work / f"run-{info.id}"
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in file.stem)[:60] or "video"
    ruled = bool(settings.lines or settings.areas)
    config = settings.run_config(
        str(file), live=False, output=out / f"{stem}-detstream.mp4",
        save_json=out / f"{stem}.jsonl",
        save_mot=out / f"{stem}-tracks.txt" if settings.tracker else None,
        stats_json=out / f"{stem}-stats.json",
        clips=out / "clips" if ruled else None, clip_pre=CLIP_PRE_S, clip_post=CLIP_POST_S)
    newest: list[FramePacket] = []
    summary = SummarySink()
    session = None
    # The last rule events for the summary (all of them are in the JSON Lines file).
    events: deque[dict] = deque(maxlen=EVENTS_SHOWN)
    event_count = [0]

    def on_packet(packet: FramePacket) -> None:
        newest[:] = [packet]
        ruled = [e.to_dict() for e in packet.events if isinstance(e, RuleEvent)]
        events.extend(ruled)
        event_count[0] += len(ruled)
        pipeline = session.pipeline if session is not None else None
        registry.count_frame(info, pipeline.metrics.recent_fps() if pipeline else 0.0, 0)

    info.state = "opening"
    yield Update(status=status_html("info", f"opening {file.name} ..."))
    try:
        session = build(config, on_packet=on_packet, extra_sinks=[summary], backends=backends)
    except UserInputError as exc:
        raise UserInputError(_upload_message(file, exc)) from None
    pipeline = session.pipeline
    total = pipeline.source.frames
    info.describe, info.state = session.describe, "running"
    started = time.perf_counter()
    last_preview = started
    rules_note = ""
    pipeline.start()
    try:
        while not pipeline.wait(STATUS_EVERY):
            if info.stop.is_set():
                pipeline.stop("page closed")
                break
            now = time.perf_counter()
            done = pipeline.metrics.frames_out
            fps = done / max(now - started, 1e-9)
            update = Update(status=status_html("progress", _progress_text(
                done, total, fps, now - started) + (f" · {rules_note}" if rules_note else ""),
                done, total))
            if newest and now - last_preview >= PREVIEW_EVERY:
                last_preview = now
                image = newest[0].annotated
                if image is not None:
                    update.preview = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            current, latest = registry.settings(client)
            if latest != version:
                version = latest
                try:
                    check_model(current.model, allow_dirs)
                    # A run keeps the rules it started with (the counts would not add up).
                    wanted = current.applied_to(session.config)
                    session.reconfigure(with_rules_of(wanted, session.config))
                    if rules_differ(wanted, session.config):
                        rules_note = "the new lines and areas apply to the next video"
                except DetstreamError as exc:
                    update.status = status_html("error", f"settings not applied: {exc}")
            yield update
    finally:
        pipeline.close()
    report = session.report()  # written to config.stats_json
    note = pipeline.source.note
    if pipeline.error is not None:
        raise UserInputError(f"processing {file.name} failed: {pipeline.error}")
    if info.stop.is_set() and pipeline.stopped_by == "page closed":
        return
    if report["frames_out"] == 0:
        raise UserInputError(f"{file.name}: no frame could be decoded"
                             + (f" ({note})" if note else "") + "; choose another video")
    counts = summary.report()
    (out / f"{stem}-summary.json").write_text(json.dumps(counts, indent=2) + "\n",
                                              encoding="utf-8")
    files = [str(p) for p in (config.save_json, config.save_mot, config.stats_json,
                              out / f"{stem}-summary.json") if p is not None]
    clips = report.get("clips", {}).get("clips", [])
    files += [clip["path"] for clip in clips[:CLIPS_OFFERED]]  # each event's moment
    text = (f"done: {report['frames_out']} frames in {report['seconds']:.1f} s "
            f"({report['fps']:.1f} FPS) with {session.describe}")
    kind = "ok"
    if note:
        text += f" — note: {note}"
        kind = "warn"
    preview = newest[0].annotated if newest else None
    yield Update(status=status_html(kind, text),
                 preview=cv2.cvtColor(preview, cv2.COLOR_BGR2RGB) if preview is not None
                 else None,
                 video=str(config.output), files=files,
                 summary=summary_markdown(report, counts) + upload_rules_markdown(
                     report.get("analytics"), list(events), event_count[0])
                 + clips_markdown(len(clips)))


def _upload_message(file: Path, exc: UserInputError) -> str:
    text = str(exc)
    if "not a readable video" in text or "no video stream" in text:
        return (f"{file.name} is not a video this server can read; upload an .mp4, .mkv, "
                ".mov, .avi or .webm file")
    return text.replace(str(file), file.name)
