"""``detstream run``: detect and track on any source, live, with any outputs."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from detstream.stream.commands.args import bounded_int, input_file, non_negative_float
from detstream.stream.options import add_arguments, values_from_arguments
from detstream.stream.run_config import RunConfig

EXAMPLES = """examples:
  detstream run                                   # the synthetic demo → runs/run-N/
  detstream run --source clip.mp4 --output out.mp4 --save-json out.jsonl
  detstream run --source 0 --show                 # a webcam, in a window
  detstream run --source rtsp://camera/stream --tracker bytetrack --save-mot tracks.txt
  detstream run --source clip.mp4 --model yolox_nano.onnx --names coco.txt --classes person
  detstream run --source a.mp4 --source rtsp://cam2/stream --output out_{stream}.mp4
  detstream run --sources cameras.txt --save-json dets_{stream}.jsonl --stats-json stats.json
  detstream run --source clip.mp4 --save-json out.jsonl --resume   # after a crash: go on
  detstream run --source lobby.mp4 --line door:100,300,500,300 --area 'desk:700,200 900,200 900,400'
                --dwell 60 --heatmap heat.png --webhook http://127.0.0.1:8080/events
"""


def register(commands: argparse._SubParsersAction) -> None:

    parser = commands.add_parser(
        "run", help="detect and track on a camera, file, stream or the synthetic world",
        description="Capture, preprocess, infer, track, draw and write, each stage in its own "
                    "thread. Files are processed frame by frame with no drops; live sources "
                    "(cameras, network streams, synthetic://...&live=1) drop old frames rather "
                    "than build latency. With no output flags the run writes runs/run-N/ "
                    "(video.mp4, detections.jsonl, tracks.txt, stats.json); on synthetic:// "
                    "sources it also scores detection and tracking against the ground truth.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", default=None, metavar="URI",
                        help="0, /dev/video0, file.mp4, folder/, 'frames/*.jpg', rtsp://..., "
                             "http://..., synthetic://?... (default: a synthetic scene); "
                             "repeat it for several streams through one model")
    parser.add_argument("--sources", type=input_file, default=None, metavar="FILE",
                        help="a text file with one source URI per line (more streams)")
    parser.add_argument("--batch", type=bounded_int(1, 256), default=None, metavar="N",
                        help="several streams: most frames per engine call (default: the "
                             "number of streams)")
    parser.add_argument("--output-tiled", type=Path, default=None, metavar="FILE",
                        help="several streams: every stream in one grid, as one H.264 video "
                             "(--show shows the grid in one window)")
    parser.add_argument("--collect-ms", type=non_negative_float, default=10.0, metavar="MS",
                        help="several streams: longest wait for a batch to fill (default 10)")
    # Every option of a run, from its one declaration (detstream.stream.run_config).
    add_arguments(parser, RunConfig, "run", skip=("source",))
    parser.set_defaults(handler=run, runs_pipeline=True)


def _summary(report: dict, live: bool = False) -> str:
    """The table printed after a run: each stage's own work, the waits apart (a live
    source's capture time among them), then frames, FPS and latency."""
    from detstream.stream.pipeline.stage_times import stage_table

    lines = [stage_table(report, live)]
    latency = report["latency_ms"]
    lines.append(f"frames in {report['frames_in']}, out {report['frames_out']}, dropped "
                 f"{report['frames_dropped']}; {report['fps']:.1f} FPS; latency p50 "
                 f"{latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms, max "
                 f"{latency['max']:.0f} ms")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from detstream.engines.errors import UserInputError
    from detstream.engines.progress import progress_bar
    from detstream.stream.multisession import read_sources_file
    from detstream.stream.run_config import DEFAULT_SOURCE
    from detstream.stream.session import build, journal_path, next_run_dir

    sources = list(args.source or [])
    if args.sources is not None:
        sources.extend(read_sources_file(args.sources))
    sources = sources or [DEFAULT_SOURCE]
    config = RunConfig(source=sources[0], **values_from_arguments(args, RunConfig, "run"))
    if args.resume and not any((args.output, args.save_json, args.save_mot)):
        raise UserInputError("--resume continues the files of an interrupted run: give the "
                             "same --save-json, --save-mot or --output as that run")
    run_dir = None
    if not any((args.output, args.save_json, args.save_mot, args.stats_json, args.show,
                args.output_tiled)):
        run_dir = next_run_dir()
        each = "_{stream}" if len(sources) > 1 else ""
        config = replace(config, output=run_dir / f"video{each}.mp4",
                         save_json=run_dir / f"detections{each}.jsonl",
                         save_mot=run_dir / f"tracks{each}.txt" if config.tracker else None,
                         stats_json=run_dir / "stats.json")
    # Every run with file outputs records its progress (a few µs a frame: BENCHMARKS.md),
    # so any run can be resumed; several streams keep one journal each ({stream}).
    config = replace(config, journal=journal_path(config))

    def log(message: str) -> None:
        tqdm.write(message, file=sys.stderr)

    if len(sources) > 1:
        return run_many(args, config, sources, log)
    if args.output_tiled is not None:
        raise UserInputError("--output-tiled shows several streams in one grid; give more "
                             "than one --source, or use --output for one")
    session = build(config, log=log)
    pipeline, source = session.pipeline, session.pipeline.source
    total = source.frames if not source.live else None
    if total is not None and config.max_frames:
        total = min(total, config.max_frames)
    decoded = "; decoded by NVDEC" if getattr(getattr(source, "grabber", None), "hardware",
                                               False) else ""
    print(f"{config.source} → {session.describe}; tracker {config.tracker or 'none'}{decoded}",
          file=sys.stderr)
    bar = progress_bar(total=total, unit="frame", desc="run")
    pipeline.on_packet = lambda packet: bar.update(1)

    def close() -> None:
        pipeline.close()
        bar.close()

    interrupted = _drive(pipeline, log, close)
    report = session.report(interrupted)
    print(_summary(report, source.live))
    if report.get("scores") is not None:
        print(_scores(report["scores"]))
    video = next((s.path for s in pipeline.sinks if s.name == "video"), None)  # resumed: new
    written = [p for p in (video, config.save_json, config.save_mot, config.heatmap,
                           config.stats_json) if p is not None]
    if written:
        print("wrote " + ", ".join(str(p) for p in written))
    if source.note:
        print(f"{args.prog}: note: {source.note}", file=sys.stderr)
    if pipeline.error is not None:
        return _failed(args.prog, pipeline.error)
    if session.resumed is not None and report["frames_out"] == 0 and not interrupted:
        print(f"{args.prog}: nothing left to do: the run had written every frame up to frame "
              f"{session.resumed.next_frame - 1}", file=sys.stderr)
        return 0
    return _exit_code(args.prog, interrupted, report["frames_out"], config.source)


def _drive(target, log, close) -> bool:
    """Start ``target`` (one pipeline, or a group of streams) and wait until it ends or fails.
    The first Ctrl-C or SIGTERM takes no new frame and finishes the ones in flight; a second
    stops at once. ``close`` finalises the outputs either way. Returns whether the run was
    interrupted."""
    from detstream.stream.signals import graceful_stop

    interrupted = False
    with graceful_stop() as stop:
        target.start()
        try:
            while not target.wait(0.2):
                if stop.is_set() and not interrupted and not getattr(target, "draining", False):
                    interrupted = True
                    log("stopping: finishing the frames in flight (press Ctrl-C again to "
                        "stop now)")
                    target.drain("interrupted")
                if getattr(target, "error", None) is not None:
                    break
        except KeyboardInterrupt:  # a second Ctrl-C
            interrupted = True
        finally:
            close()
    return interrupted


def _scores(scores: dict) -> str:
    """The scores against a synthetic scene's truth, as printed after a run."""
    det, window = scores["detection"], scores["frames"]
    lines = []
    if window["scored"] < window["seen"]:
        lines.append(f"scores over the last {window['scored']} of {window['seen']} frames "
                     f"(frames {window['first']}-{window['last']})")
    lines.append(f"detection vs truth: mAP50 {det['map50']:.3f}  mAP50-95 "
                 f"{det['map50_95']:.3f}  P {det['precision']:.3f}  R {det['recall']:.3f}")
    if "tracking" in scores:
        t = scores["tracking"]
        lines.append(f"tracking vs truth:  HOTA {t['HOTA']:.3f}  MOTA {t['MOTA']:.3f}  "
                     f"IDF1 {t['IDF1']:.3f}  IDSW {t['IDSW']}")
    return "\n".join(lines)


def _failed(prog: str, error: BaseException) -> int:
    """Exit code and message of a run a stage failed in (outputs were finalised): a user's
    mistake found while running is one error line (exit 2), anything else exit 1."""
    from detstream.engines.errors import UserInputError
    from detstream.stream.sinks.base import OutputError

    cause = error.__cause__
    if isinstance(cause, UserInputError):
        raise UserInputError(str(cause))
    if isinstance(cause, OutputError):
        print(f"{prog}: error: {cause} (the other outputs were finalised)", file=sys.stderr)
        return 1
    if os.environ.get("DETSTREAM_DEBUG"):
        traceback.print_exception(cause)
    print(f"{prog}: error: {error} (outputs written so far were finalised; set "
          "DETSTREAM_DEBUG=1 for the traceback)", file=sys.stderr)
    return 1


def _exit_code(prog: str, interrupted: bool, frames_out: int, source: str) -> int:
    """130 after an interruption, 2 when no frame came out of ``source``, else 0."""
    if interrupted:
        print(f"{prog}: interrupted; outputs written so far were finalised", file=sys.stderr)
        return 130
    if frames_out == 0:
        print(f"{prog}: error: no frame could be processed from {source}", file=sys.stderr)
        return 2
    return 0


def _stream_line(stream: dict) -> str:
    latency = stream["latency_ms"]
    line = (f"stream {stream['stream']}  {stream['uri']}: in {stream['frames_in']}, out "
            f"{stream['frames_out']}, dropped {stream['frames_dropped']}; {stream['fps']:.1f} FPS;"
            f" latency p95 {latency['p95']:.0f} ms")
    if stream["source"]["reconnects"]:
        line += f"; {stream['source']['reconnects']} reconnects"
    return line


def run_many(args: argparse.Namespace, config, sources: list[str], log) -> int:
    """Several sources through one model: one batched inference service, one pipeline per
    stream; ``{stream}`` in the output names becomes each stream's number."""
    from detstream.engines.progress import progress_bar
    from detstream.stream.multisession import MultiSession

    group = MultiSession(config, sources, log, batch=args.batch, collect_ms=args.collect_ms,
                         tiled_output=args.output_tiled, show=config.show)
    lengths = [e.pipeline.source.frames if not e.pipeline.source.live else None
               for e in group.streams.values()]
    total = None if None in lengths else sum(
        min(n, config.max_frames) if config.max_frames else n for n in lengths)
    print(f"{len(sources)} sources → {group.describe}; up to {group.batch} frames per call; "
          f"tracker {config.tracker or 'none'}", file=sys.stderr)
    bar = progress_bar(total=total, unit="frame", desc="run")
    for entry in group.streams.values():
        entry.pipeline.on_packet = lambda packet: bar.update(1)
    report: dict = {}

    def close() -> None:
        report.update(group.close())
        bar.close()

    interrupted = _drive(group, log, close)
    for stream in report["streams"]:
        print(_stream_line(stream))
    calls = report["inference"]
    print(f"{len(sources)} streams: {report['frames_out']} frames out, {report['fps']:.1f} FPS "
          f"in all; {calls['engine_calls']} engine calls, {calls['mean_batch']:.2f} frames each")
    failed = [s for s in report["streams"] if s["error"]]
    for stream in failed:
        print(f"{args.prog}: error: stream {stream['stream']} ({stream['uri']}): "
              f"{stream['error']} (its outputs written so far were finalised; the other "
              "streams ran on)", file=sys.stderr)
    if failed:
        return 1
    resumed = [e.session.resumed is not None for e in group.streams.values()]
    if all(resumed) and report["frames_out"] == 0 and not interrupted:
        print(f"{args.prog}: nothing left to do: every stream had written all its frames",
              file=sys.stderr)
        return 0
    return _exit_code(args.prog, interrupted, report["frames_out"], "any source")
