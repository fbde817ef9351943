"""The page: Webcam, Video file and Stream tabs beside one settings panel, served by Gradio,
with the live transport (:mod:`detstream.demo.live`) mounted in Gradio's own server."""

import atexit
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi import WebSocket

from detstream.demo.admission import Admission
from detstream.demo.clips import CLIP_POST_S, CLIP_PRE_S, clip_path
from detstream.demo.examples import ExampleVideo
from detstream.demo.guard import NAMED_MODELS, check_model, names_beside, onnx_models
from detstream.demo.live import LiveHub, same_origin
from detstream.demo.options import DemoOptions
from detstream.demo.rules import (
    change_rules,
    close_distance,
    draw_page_rules,
    first_frame,
    rules_markdown,
    rules_view,
)
from detstream.demo.state import PAGE_OPTIONS, LiveSettings, Registry
from detstream.demo.upload import Update, process_video, status_html
from detstream.engines.errors import DetstreamError

STATIC = Path(__file__).parent / "static"
ABOUT = ("**detstream** detects and tracks objects live: your webcam, an uploaded video or a "
         "stream goes through the same pipeline as the `detstream run` command (detector, "
         "tracker, drawing), and the annotated result comes back here. The built-in model "
         "knows the synthetic world's circles, triangles, squares and stars: try the example "
         "video, or choose another model in the settings.")
IMGSZ_CHOICES = [("model's own", 0), ("320", 320), ("416", 416), ("512", 512), ("640", 640)]
#: The detect-every slider: 0 is the adaptive schedule (RunConfig.detect_every).
EVERY_LABEL = "detect every K frames (0: auto)"
EVERY_INFO = ("auto: every frame tracked and shown at the camera's rate, the detector on the "
              "newest frame whenever it is free; K: the detector on every K-th frame")
DWELL_LABEL = "loitering after, seconds in an area (0: off)"
RULES_HINT = ("Click on the first frame: two clicks make a **line** (crossings counted per "
              "direction); an **area**'s corners, closed by clicking the first corner again or "
              "*Finish area* (who enters, leaves, stays). The rules are this page's: the live "
              "tabs use them too.")
NO_VIDEO = "Choose a video to draw counting lines and areas on its first frame."


def choices(name: str) -> list[str]:
    """A settings control's choices, from the option's declaration."""
    return list(PAGE_OPTIONS[name].kind.values)


def slider(name: str) -> dict[str, float]:
    """A settings slider's minimum, maximum and step, from the option's declaration."""
    control = PAGE_OPTIONS[name].control
    return {"minimum": control.minimum, "maximum": control.maximum, "step": control.step}


def viewer_html(mode: str, allow_streams: bool = True) -> str:
    """The live viewer's markup (driven by static/detstream.js)."""
    if mode == "stream" and not allow_streams:
        return ('<div class="ds-message" data-kind="info">Streams are off on this server. '
                "Start it with <code>detstream demo --allow-streams</code> (and "
                "<code>--allow-dir DIR</code> for files) to watch RTSP/HTTP streams here."
                "</div>")
    uri = ('<input class="ds-uri" type="text" placeholder="rtsp://..., http://..., or a video '
           'file in an allowed folder">' if mode == "stream" else "")
    label = "Start camera" if mode == "webcam" else "Play"
    hint = ("Press Start camera and allow access: frames go to the server and come back "
            "annotated." if mode == "webcam" else "Enter a stream URL and press Play.")
    return f"""
<div class="ds-viewer" data-mode="{mode}">
  <div class="ds-stage"><canvas class="ds-out" width="640" height="480"></canvas>
    <video class="ds-cam" muted playsinline autoplay></video>
    <div class="ds-placeholder">{hint}</div></div>
  <div class="ds-controls">{uri}<button class="ds-start">{label}</button>
    <button class="ds-stop" disabled>Stop</button><span class="ds-state">idle</span></div>
  <div class="ds-rules-bar"><span class="ds-rules-title">Count</span>
    <button class="ds-tool" data-tool="line" title="two clicks on the video">+ line</button>
    <button class="ds-tool" data-tool="area" title="click the corners on the video">+ area
    </button><button class="ds-finish" disabled>Finish area</button>
    <button class="ds-clear-rules">Clear rules</button><span class="ds-rules-hint"></span></div>
  <div class="ds-stats"><span><b class="ds-fps">–</b> FPS</span>
    <span>latency p50 <b class="ds-lat">–</b> ms, p95 <b class="ds-lat95">–</b> ms</span>
    <span>dropped <b class="ds-drop">0</b></span><span>objects <b class="ds-obj">0</b></span>
    <span class="ds-model"></span></div>
  <div class="ds-analytics"><table class="ds-counters ds-line-counts" hidden><thead><tr>
    <th>line</th><th>in</th><th>out</th></tr></thead><tbody></tbody></table>
    <table class="ds-counters ds-area-counts" hidden><thead><tr><th>area</th><th>inside</th>
    <th>entered</th><th>left</th><th title="the longest stay so far">longest</th></tr></thead>
    <tbody></tbody></table>
    <div class="ds-events-title">events, newest first</div><ol class="ds-events"></ol></div>
  <div class="ds-clips" hidden><div class="ds-clips-title">event clips, newest first
    <span>({CLIP_PRE_S:g} s before to {CLIP_POST_S:g} s after)</span></div>
    <ol class="ds-clip-list"></ol></div>
  <details class="ds-details" open><summary>stage timings, last 2 s (each stage's own work:
    ms per frame it worked on, frames per second; waits apart)</summary>
    <table class="ds-timings"><tbody></tbody></table></details>
  <div class="ds-message"></div>
</div>"""


def _mount_js(mode: str) -> str:
    return (f"const url = new URL('detstream/static/detstream.js', document.baseURI);"
            f"import(url.href).then((m) => m.mount(element.querySelector('.ds-viewer') "
            f"|| element, '{mode}'));")


HEAD = """<script>
window.__detstreamClient = window.__detstreamClient || (window.crypto && crypto.randomUUID
  ? crypto.randomUUID() : String(Math.random()).slice(2) + String(Date.now()));
</script>"""


@dataclass
class Server:
    """A running demo: its Gradio app, the shared state, and where its files live."""

    blocks: Any
    app: Any
    url: str
    share_url: str | None
    root: Path
    registry: Registry

    def close(self) -> None:
        for info in self.registry.active():
            info.stop.set()
        self.blocks.close()
        shutil.rmtree(self.root, ignore_errors=True)


def build_blocks(options: DemoOptions, registry: Registry, admission: Admission,
                 hub: LiveHub, example: ExampleVideo):
    """The Gradio layout and its event handlers."""
    import gradio as gr

    allow = list(options.allow_dirs)
    models = list(dict.fromkeys([*NAMED_MODELS, options.start.model, *onnx_models(allow)]))
    clients: dict[str, str] = {}  # Gradio session -> page client id
    lock = threading.Lock()

    def register(client: str, request: gr.Request) -> str:
        with lock:
            clients[request.session_hash] = client
        registry.settings(client)  # create with the server's defaults
        return client

    def forget(request: gr.Request) -> None:
        with lock:
            client = clients.pop(request.session_hash, None)
        if client:
            registry.forget(client)

    def class_names(model: str) -> list[str]:
        from detstream.engines.runtime.select import resolve_model
        from detstream.engines.zoo.catalog import named_model
        from detstream.engines.zoo.coco import COCO80

        entry = named_model(model) if "/" not in model else None
        if entry is not None and entry.kind != "embedded":
            return list(COCO80)  # known without downloading the model
        try:
            return list(resolve_model(model, names_beside(model)).spec.class_names)
        except DetstreamError:
            return []

    def client_of(client: str | None, request: gr.Request) -> str:
        """The page's id; before the page has registered, its Gradio session stands in."""
        if client:
            return client
        with lock:
            return clients.get(request.session_hash, request.session_hash)

    def apply(client, model, backend, imgsz, conf, iou, classes, tracker, trails, every, dwell,
              request: gr.Request):
        note = ""
        client = client_of(client, request)
        current, _ = registry.settings(client)
        try:
            model = check_model(model, allow) if model else "default"
        except DetstreamError as exc:
            model = current.model
            note = f"⚠ {exc}"
        names = class_names(model)
        kept = tuple(c for c in (classes or []) if c in names)
        controls = dict(model=model, names=names_beside(model), backend=backend, imgsz=imgsz,
                        conf=conf, iou=iou, classes=kept, tracker=tracker, trails=trails,
                        detect_every=every, dwell=float(dwell) if dwell else None)
        try:
            # In one step with the current settings: the page's rules, drawn meanwhile, stay.
            registry.amend(client, lambda now: LiveSettings.from_controls(now.config,
                                                                          **controls))
        except DetstreamError as exc:
            return f"⚠ {exc}", gr.update(choices=names, value=list(kept))
        if not note:
            note = f"applied: {Path(model).name}, {backend}, conf {conf:.2f}, {tracker}"
            if dwell:
                note += f", loitering after {float(dwell):g} s"
        return note, gr.update(choices=names, value=list(kept))

    def upload(path, client, request: gr.Request):
        client = client_of(client, request)
        try:
            for item in process_video(path, client, registry, admission, hub.backends, allow,
                                      options.max_upload_mb * 1024 * 1024):
                yield _outputs(item)
        except Exception as exc:  # a bug, not the visitor's mistake: say so, keep serving
            logging.getLogger("detstream.demo").exception("upload failed")
            yield _outputs(Update(status=status_html(
                "error", f"processing failed on the server ({type(exc).__name__}: {exc})")))

    def _outputs(item: Update):
        return tuple(gr.skip() if value is None else value for value in
                     (item.status, item.preview, item.video, item.files, item.summary))

    def rules_frame(path, client: str, draft: list, tool: str | None = None, note: str = "",
                    frame: np.ndarray | None = None) -> tuple:
        """The first frame with the page's rules and the draft, and the note under it
        (``frame``: the first frame when the caller has read it already)."""
        frame = first_frame(path) if frame is None else frame
        if frame is None:
            return gr.update(visible=False), None, NO_VIDEO if not path else (
                "⚠ the first frame of this file could not be read: is it a video?")
        settings, _ = registry.settings(client)
        image = draw_page_rules(frame, settings, tool, draft)
        text = rules_markdown(settings) + (f" {note}" if note else "")
        return gr.update(visible=True), cv2.cvtColor(image, cv2.COLOR_BGR2RGB), text

    def show_rules(path, client, request: gr.Request):
        box, image, text = rules_frame(path, client_of(client, request), [])
        return box, image, text, []

    def rule_click(path, client, tool, draft, evt: gr.SelectData, request: gr.Request):
        client = client_of(client, request)
        frame = first_frame(path)
        if frame is None or not isinstance(evt.index, list | tuple) or len(evt.index) != 2:
            return (*rules_frame(path, client, [])[1:], [])
        point = [float(evt.index[0]), float(evt.index[1])]
        draft = [*(draft or []), point]
        note = ""
        closes = (tool == "area" and len(draft) > 3
                  and np.hypot(point[0] - draft[0][0], point[1] - draft[0][1])
                  <= close_distance(frame.shape[1], frame.shape[0]))
        if (tool == "line" and len(draft) == 2) or closes:
            draft, note = commit(client, tool, draft[:-1] if closes else draft)
        elif tool == "area":
            note = f"{len(draft)} corner(s): click the first corner again or Finish area."
        else:
            note = "Click the line's other end."
        return (*rules_frame(path, client, draft, tool, note, frame)[1:], draft)

    def commit(client: str, kind: str, points: list) -> tuple[list, str]:
        """Store a drawn rule; the draft left (empty when stored) and what to say."""
        try:
            _, said = change_rules(registry, client, {"action": "add", "kind": kind,
                                                      "points": points})
        except DetstreamError as exc:
            return [], f"⚠ {exc}"
        return [], f"{said}."

    def finish_area(path, client, tool, draft, request: gr.Request):
        client = client_of(client, request)
        if tool != "area" or len(draft or []) < 3:
            note = "⚠ an area needs three corners or more: click them on the frame first."
            return (*rules_frame(path, client, draft or [], tool, note)[1:], draft or [])
        draft, note = commit(client, "area", draft)
        return (*rules_frame(path, client, draft, tool, note)[1:], draft)

    def clear_rules(path, client, request: gr.Request):
        client = client_of(client, request)
        _, said = change_rules(registry, client, {"action": "clear"})
        return (*rules_frame(path, client, [], None, f"{said}.")[1:], [])

    def new_tool(path, client, request: gr.Request):
        return (*rules_frame(path, client_of(client, request), [])[1:], [])

    defaults = registry.defaults
    with gr.Blocks(title="detstream", delete_cache=(600, 3600)) as blocks:
        client = gr.Textbox(visible=False, elem_id="ds-client")
        gr.Markdown("# detstream — live detection and tracking")
        gr.Markdown(ABOUT, elem_classes=["ds-about"])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                with gr.Tabs():
                    with gr.Tab("Webcam", id="webcam", elem_id="ds-tab-webcam"):
                        gr.HTML(viewer_html("webcam"), js_on_load=_mount_js("webcam"),
                                elem_id="ds-webcam")
                    with gr.Tab("Video file", id="upload", elem_id="ds-tab-upload"
                                ) as upload_tab:
                        with gr.Row():
                            video_in = gr.File(label="video to process", type="filepath",
                                               file_types=["video"], elem_id="ds-upload")
                            with gr.Column(min_width=160):
                                process = gr.Button("Process video", variant="primary",
                                                    elem_id="ds-process")
                                example_button = gr.Button("Try the example video",
                                                           elem_id="ds-example")
                        with gr.Accordion("Counting lines and watched areas", open=True,
                                          elem_id="ds-rules-upload"):
                            with gr.Column(visible=False) as rules_box:
                                gr.Markdown(RULES_HINT, elem_classes=["ds-hint"])
                                rules_image = gr.Image(
                                    label="first frame: click to draw", type="numpy",
                                    format="jpeg", interactive=False,
                                    elem_id="ds-rules-image")
                                with gr.Row(equal_height=False):
                                    tool = gr.Radio(["line", "area"], value="line",
                                                    label="draw", elem_id="ds-rule-tool",
                                                    scale=2, min_width=160)
                                    finish = gr.Button("Finish area", size="sm", scale=1,
                                                       elem_id="ds-finish-area")
                                    clear = gr.Button("Clear rules", size="sm", scale=1,
                                                      elem_id="ds-clear-rules")
                            rules_note = gr.Markdown(NO_VIDEO, elem_id="ds-rules-note")
                            draft = gr.State([])
                        status = gr.HTML("", elem_id="ds-upload-status")
                        preview = gr.Image(label="output as it is made", type="numpy",
                                           format="jpeg", interactive=False,
                                           elem_id="ds-preview")
                        video_out = gr.Video(label="annotated video", interactive=False,
                                             elem_id="ds-video")
                        files_out = gr.File(label="results: JSON Lines, MOT tracks, stats, "
                                                  "event clips",
                                            file_count="multiple", interactive=False,
                                            elem_id="ds-files")
                        summary = gr.Markdown(elem_id="ds-summary")
                    with gr.Tab("Stream", id="stream", elem_id="ds-tab-stream"):
                        gr.HTML(viewer_html("stream", options.allow_streams),
                                js_on_load=_mount_js("stream") if options.allow_streams
                                else None, elem_id="ds-stream")
                    if options.fleet:
                        with gr.Tab("Fleet", id="fleet", elem_id="ds-tab-fleet"):
                            fleet_parts = _fleet_tab(options.fleet)
            with gr.Column(scale=1, min_width=240, elem_id="ds-settings"):
                gr.Markdown("### Settings\nChanges apply from the next frame.")
                model = gr.Dropdown(models, value=defaults.model, label="model",
                                    allow_custom_value=True, elem_id="ds-model",
                                    info="default, a COCO model (yolox-nano, ...: downloaded "
                                         "on first use), or an .onnx file in an allowed folder")
                backend = gr.Dropdown(choices("backend"), value=defaults.backend, label="backend",
                                      elem_id="ds-backend")
                sizes = IMGSZ_CHOICES + ([(str(defaults.imgsz), defaults.imgsz)] if defaults.imgsz
                                         and defaults.imgsz not in dict(IMGSZ_CHOICES).values()
                                         else [])
                imgsz = gr.Dropdown(sizes, value=defaults.imgsz or 0,
                                    label="input size", elem_id="ds-imgsz")
                conf = gr.Slider(**slider("conf"), value=defaults.conf, label="confidence",
                                 elem_id="ds-conf")
                iou = gr.Slider(**slider("iou"), value=defaults.iou, label="NMS IoU",
                                elem_id="ds-iou")
                classes = gr.Dropdown(class_names(defaults.model), value=[],
                                      multiselect=True, label="classes (empty: all)",
                                      elem_id="ds-classes")
                tracker = gr.Radio(choices("tracker"), value=defaults.tracker or "none",
                                   label="tracker",
                                   elem_id="ds-tracker")
                trails = gr.Checkbox(value=bool(defaults.trails), label="track trails",
                                     elem_id="ds-trails")
                every = gr.Slider(**slider("detect_every"), value=defaults.detect_every,
                                  label=EVERY_LABEL, info=EVERY_INFO, elem_id="ds-every")
                dwell = gr.Number(value=defaults.dwell or 0, minimum=0, label=DWELL_LABEL,
                                  elem_id="ds-dwell",
                                  info="a track that stays longer in a watched area is an "
                                       "event (Enter or leave the box to apply)")
                note = gr.Markdown(elem_id="ds-settings-note")
        controls = [model, backend, imgsz, conf, iou, classes, tracker, trails, every, dwell]
        blocks.load(register, [client], [client], js="(c) => window.__detstreamClient")
        for control in controls:
            # A number applies when typed in full (each keystroke would restart live runs).
            events = ([control.release] if isinstance(control, gr.Slider) else
                      [control.submit, control.blur] if isinstance(control, gr.Number) else
                      [control.change])
            for event in events:
                event(apply, [client, *controls], [note, classes], queue=False,
                      trigger_mode="always_last")
        shown = [rules_image, rules_note]
        video_in.change(show_rules, [video_in, client], [rules_box, *shown, draft],
                        queue=False)
        upload_tab.select(show_rules, [video_in, client], [rules_box, *shown, draft],
                          queue=False)
        rules_image.select(rule_click, [video_in, client, tool, draft], [*shown, draft],
                           queue=False)
        finish.click(finish_area, [video_in, client, tool, draft], [*shown, draft],
                     queue=False)
        clear.click(clear_rules, [video_in, client], [*shown, draft], queue=False)
        tool.change(new_tool, [video_in, client], [*shown, draft], queue=False)
        outputs = [status, preview, video_out, files_out, summary]
        # The page draws its own progress bar: Gradio's overlay would hide the preview.
        process.click(upload, [video_in, client], outputs, show_progress="hidden",
                      concurrency_limit=max(2, 2 * options.max_sessions))
        example_button.click(lambda: str(example.path()), None, video_in, queue=False).then(
            upload, [video_in, client], outputs, show_progress="hidden",
            concurrency_limit=max(2, 2 * options.max_sessions))
        blocks.unload(forget)
        if options.fleet:
            from detstream.demo.fleet import REFRESH_S, fleet_view

            def look() -> tuple:
                return fleet_view(options.fleet)

            gr.Timer(REFRESH_S).tick(look, None, list(fleet_parts), queue=False)
            blocks.load(look, None, list(fleet_parts), queue=False)
    return blocks


def _fleet_tab(url: str) -> tuple:
    """The Fleet tab's parts: summary, streams, workers, events (filled by the timer)."""
    import gradio as gr

    from detstream.stream.fleet.client import STREAM_COLUMNS, WORKER_COLUMNS

    summary = gr.Markdown(f"looking at {url} ...", elem_id="ds-fleet-summary")
    streams = gr.Dataframe(headers=STREAM_COLUMNS, label="streams", interactive=False,
                           elem_id="ds-fleet-streams")
    workers = gr.Dataframe(headers=WORKER_COLUMNS, label="workers", interactive=False,
                           elem_id="ds-fleet-workers")
    events = gr.Markdown(elem_id="ds-fleet-events")
    return summary, streams, workers, events


def _routes(app, hub: LiveHub, registry: Registry, admission: Admission) -> None:
    """The live WebSocket, the rules and status endpoints, the live sessions' event clips and
    the viewer's files, ahead of Gradio's."""
    from fastapi import APIRouter, Request
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    router = APIRouter()

    @router.websocket("/detstream/ws/live")
    async def live(websocket: WebSocket) -> None:
        await hub.handle(websocket)

    @router.post("/detstream/api/rules")
    async def rules(request: Request) -> JSONResponse:
        """A rule drawn on a live viewer, or the rules cleared (``demo.rules.rule_request``)."""
        if not same_origin(request):  # another site's page may not change a visitor's rules
            return JSONResponse({"ok": False, "message": "refused"}, status_code=403)
        client = request.query_params.get("client") or "anonymous"
        try:
            body = await request.json()
        except ValueError:
            body = None
        try:
            settings, said = change_rules(registry, client, body)
        except DetstreamError as exc:
            settings, _ = registry.settings(client)
            return JSONResponse({"ok": False, "message": str(exc),
                                 "rules": rules_view(settings)}, status_code=400)
        return JSONResponse({"ok": True, "message": said, "rules": rules_view(settings)})

    @router.get("/detstream/clips/{client}/{session}/{name}")
    async def clip(client: str, session: str, name: str) -> Response:
        """A live session's event clip, only from that visitor's own clip folder
        (``demo.clips.clip_path``); anything else is 404, whether it exists or not. A plain
        GET, so a link on the page can play or save it; the client id in the address is
        the page's own random id, which other pages do not know."""
        path = clip_path(registry, client, session, name)
        if path is None:
            return JSONResponse({"ok": False, "message": "no such clip"}, status_code=404)
        return FileResponse(path, media_type="video/mp4", filename=path.name,
                            content_disposition_type="inline")

    @router.get("/detstream/api/status")
    async def status() -> JSONResponse:
        report = registry.status()
        report["queued"] = admission.waiting()
        return JSONResponse(report)

    routes = [*router.routes, Mount("/detstream/static", StaticFiles(directory=STATIC),
                                    name="detstream-static")]
    app.router.routes[0:0] = routes


def serve(options: DemoOptions, block: bool = False, log=print) -> Server:
    """Start the demo server (in the background unless ``block``)."""
    from detstream.stream.session import BackendCache

    root = Path(options.workdir or tempfile.mkdtemp(prefix="detstream-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(root / "gradio"))
    import gradio as gr

    model = check_model(options.start.model, list(options.allow_dirs))
    defaults = LiveSettings(options.start, model=model, names=names_beside(model))
    registry = Registry(root, defaults)
    admission = Admission(options.max_sessions)
    backends = BackendCache()
    hub = LiveHub(registry, admission, backends, options.allow_dirs, options.allow_streams)
    example = ExampleVideo(root)
    blocks = build_blocks(options, registry, admission, hub, example)
    blocks.queue(default_concurrency_limit=max(2, 2 * options.max_sessions))
    css = (STATIC / "detstream.css").read_text(encoding="utf-8")
    app, url, share_url = blocks.launch(
        server_name=options.host, server_port=options.port, share=options.share,
        max_file_size=f"{options.max_upload_mb}mb", allowed_paths=[str(root)],
        prevent_thread_lock=True, quiet=True, show_error=True, head=HEAD, css=css,
        theme=gr.themes.Soft(), footer_links=[])
    _routes(app, hub, registry, admission)
    server = Server(blocks, app, url, share_url, root, registry)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    # A first model opening warms the cache so the first visitor does not wait for it.
    threading.Thread(target=lambda: _warm(backends, defaults), daemon=True).start()
    if block:
        blocks.block_thread()
    return server


def _warm(backends, defaults: LiveSettings) -> None:
    try:
        backends.open(defaults.run_config("push://"))
    except Exception:  # the first session reports the problem to its page
        pass


__all__ = ["DemoOptions", "Server", "build_blocks", "serve"]
