"""``detstream demo``: the browser page (registered with the command line as a plugin, so the
``stream`` package never imports ``demo``)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from detstream.stream.commands.args import bounded_int, positive_int
from detstream.stream.options import add_arguments, values_from_arguments
from detstream.stream.run_config import RunConfig

EXAMPLES = """examples:
  detstream demo                                   # http://127.0.0.1:7860, the default model
  detstream demo --allow-streams --allow-dir ~/videos --allow-dir ~/models
  detstream demo --host 0.0.0.0 --port 8080 --max-upload-mb 500
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="the browser page: webcam, video upload and streams, live",
        description="Serves a Gradio page where visitors run detection and tracking on their "
                    "own webcam (frames carried over a WebSocket, newest frame wins), on an "
                    "uploaded video (every frame, results to download) or, with "
                    "--allow-streams, on a server-side stream. --model, --backend, --imgsz, "
                    "--conf and --tracker set what the page starts with; visitors change "
                    "them on the page. The page reads files only "
                    "inside the --allow-dir folders; uploads and outputs live in a temporary "
                    "folder deleted when a page closes and when the server exits.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=bounded_int(1, 65535), default=7860,
                        help="port (default 7860)")
    # What the page starts with, from the options' one declaration (the visitor can change
    # each on the page).
    add_arguments(parser, RunConfig, "demo")
    parser.add_argument("--allow-streams", action="store_true",
                        help="offer the Stream tab (RTSP/HTTP URLs, files in --allow-dir)")
    parser.add_argument("--allow-dir", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder the page may read models and videos from (repeatable)")
    parser.add_argument("--max-upload-mb", type=positive_int, default=200,
                        help="largest upload accepted, in MB (default 200)")
    parser.add_argument("--max-sessions", type=positive_int, default=2,
                        help="sessions processed at once per backend; others wait in line "
                             "(default 2)")
    parser.add_argument("--share", action="store_true",
                        help="also ask Gradio for a public share link")
    parser.add_argument("--fleet", default=None, metavar="URL",
                        help="also show a running 'detstream fleet run' in a Fleet tab (its "
                             "endpoint, e.g. http://127.0.0.1:8780)")
    parser.set_defaults(handler=run, runs_pipeline=True)


def run(args: argparse.Namespace) -> int:
    from detstream.engines.errors import UserInputError

    for folder in args.allow_dir:
        if not folder.is_dir():
            raise UserInputError(f"--allow-dir {folder} is not a folder")
    import os
    import tempfile

    # Gradio reads its upload folder when it is imported: keep it in ours, deleted at exit.
    workdir = Path(tempfile.mkdtemp(prefix="detstream-demo-"))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workdir / "gradio"))
    from detstream.demo.app import serve
    from detstream.demo.options import DemoOptions

    allow = [folder.resolve() for folder in args.allow_dir]
    if args.model.lower().endswith(".onnx"):  # the operator's own model: its folder is allowed
        from detstream.engines.zoo.resolve import resolve_model

        model = Path(args.model).expanduser()
        resolve_model(model)  # a missing, damaged or unsafe file is refused before serving
        allow.append(model.resolve().parent)
    start = RunConfig(**values_from_arguments(args, RunConfig, "demo"))
    options = DemoOptions(host=args.host, port=args.port, start=start,
                          allow_streams=args.allow_streams,
                          allow_dirs=tuple(dict.fromkeys(allow)),
                          max_upload_mb=args.max_upload_mb, max_sessions=args.max_sessions,
                          share=args.share, workdir=workdir, fleet=args.fleet)
    try:
        server = serve(options)
    except OSError as exc:
        raise UserInputError(f"cannot serve on {args.host}:{args.port} ({exc}); choose "
                             "another --port") from None
    print(f"detstream demo on {server.url}" + (f" (share link {server.share_url})"
                                               if server.share_url else ""), file=sys.stderr)
    print("Ctrl-C stops the server", file=sys.stderr)
    def terminate(signum, frame):  # SIGTERM: stop like Ctrl-C, cleaning up
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        server.blocks.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()  # stops every session and deletes the folder
    return 0
