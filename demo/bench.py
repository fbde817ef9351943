"""``detstream bench demo``: the page driven by headless Chromium with a fake camera, side by
side with ``detstream run`` on a paced synthetic camera of the same size, scene, model and
settings.

Figures are taken where they happen: frames shown and capture-to-display latency in the page
(each frame's camera capture time to the moment its annotated result is drawn, paired by
frame id), server CPU from the server's own clock. The page keeps its figures and the
benchmark reads them once at the end, so the browser driver stays idle while it measures.

The two sides are measured alike: each runs ``--warmup`` seconds first, then ``--seconds``
are measured; the command line's FPS counts the frames it output whose capture time (the
paced camera's clock) lies in that window, as the page counts the frames it drew in its own.
Both run the same live machinery (``--detect-every 0``: every frame tracked at the camera's
rate, the detector beside it); ``detstream run`` writes the annotated video, its nearest to
showing it, where the page's server encodes each frame as JPEG. The server's stage times
(last two seconds, from the page) are printed beside the command line's, each stage's own
work with the waits apart.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from detstream.stream.bench import job
from detstream.stream.commands.args import (
    add_model_arguments,
    input_file,
    non_negative_float,
    positive_float,
)

CAMERA = (640, 480, 30)
WARMUP_S = 5.0  # the default --warmup
#: Issue 36's targets: the page at the command line's pace, and its latency.
TARGET_RATIO = 0.95
TARGET_P50_MS = 100.0
TARGET_P95_MS = 150.0
EXAMPLES = """examples:
  detstream bench demo                       # 60 s of webcam, then an upload, vs detstream run
  detstream bench demo --seconds 120 --json runs/bench-demo.json
  detstream bench demo --imgsz 320 --no-upload
"""


def register(jobs: argparse._SubParsersAction) -> None:
    """Declare ``bench demo`` and its arguments on ``jobs`` (the ``detstream.bench`` entry
    point: ``detstream bench`` adds its own jobs the same way)."""
    parser = job.declare(
        jobs, "demo", run, help="the browser page's FPS, latency and CPU vs detstream run",
        description="Starts detstream demo, drives its page in headless Chromium with a fake "
                    "640x480 30 fps camera (a synthetic scene) for --seconds, and prints the "
                    "frames shown per second, capture-to-display latency measured in the "
                    "page (p50/p95, first vs last 10 s), frames dropped and server CPU per "
                    "frame; then runs detstream run on a paced synthetic camera of the same "
                    "size and scene with the same model and settings, measured after the "
                    "same warm-up over the same time, and prints both sides' stage times "
                    "(each stage's own work, waits apart). Unless --no-upload, it also "
                    "processes a video through the page's upload and with detstream run.",
        epilog=EXAMPLES)
    parser.add_argument("--seconds", type=positive_float, default=60.0,
                        help="measured webcam time (default 60)")
    parser.add_argument("--warmup", type=non_negative_float, default=WARMUP_S, metavar="SECONDS",
                        help="seconds each side runs before it is measured (default "
                             f"{WARMUP_S:g})")
    add_model_arguments(parser, model_help="'default' or an .onnx file", names=False,
                        weights=False, imgsz_help="model input size")
    job.add_run_options(parser, tracker=True)
    parser.add_argument("--upload", type=input_file, default=None,
                        help="video for the upload comparison (default: a synthetic 640x360 "
                             "scene, 240 frames)")
    parser.add_argument("--no-upload", action="store_true", help="skip the upload comparison")
    job.add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    from detstream.engines.errors import UserInputError

    try:
        import playwright  # noqa: F401
    except ImportError:
        raise UserInputError("bench demo needs Playwright: pip install 'detstream[dev]' "
                             "(and Debian's chromium)") from None
    from detstream.demo.browser import chromium_path

    chromium_path()
    with tempfile.TemporaryDirectory(prefix="detstream-bench-demo-") as tmp:
        work = Path(tmp)
        figures = bench_demo(work, args.seconds, args.model, args.imgsz, args.tracker,
                             None if args.no_upload else (args.upload or "synthetic"),
                             warmup=args.warmup)
    print(format_figures(figures))
    job.write_json(args.json, figures)
    return 0


def _model_args(model: str, imgsz: int | None, tracker: str | None) -> list[str]:
    args = ["--model", model, "--tracker", tracker or "none"]
    return args + (["--imgsz", str(imgsz)] if imgsz else [])


def bench_demo(work: Path, seconds: float, model: str = "default", imgsz: int | None = None,
               tracker: str | None = "botsort", upload: Path | str | None = "synthetic",
               warmup: float = WARMUP_S) -> dict:
    """Measure the page and the command line in one run; returns the figures."""
    from detstream.demo.browser import write_y4m

    width, height, fps = CAMERA
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    log(f"rendering the fake camera ({width}x{height} at {fps} fps) ...")
    y4m = write_y4m(work / "camera.y4m", width, height, fps, frames=150)
    allow: list[str] = []  # an ONNX model's folder is allowed by `detstream demo --model`
    figures: dict = {"camera": f"{width}x{height}@{fps}", "model": model, "imgsz": imgsz,
                     "tracker": tracker or "none"}
    log(f"page: {seconds:.0f} s of webcam through detstream demo ...")
    figures.update(_measure_page(work, y4m, seconds, [*_model_args(model, imgsz, tracker),
                                                      *allow], warmup))
    log(f"command line: detstream run on a paced synthetic camera for {seconds:.0f} s ...")
    figures.update(_measure_cli(work, seconds, model, imgsz, tracker, warmup))
    figures["page_vs_cli"] = round(figures["page_fps"] / max(figures["cli_fps"], 1e-9), 3)
    if upload is not None:
        video = _upload_video(work) if upload == "synthetic" else Path(upload)
        log(f"upload: {video.name} through the page and through detstream run ...")
        figures.update(_measure_upload(work, video, [*_model_args(model, imgsz, tracker),
                                                     *allow], model, imgsz, tracker))
    return figures


def _measure_page(work: Path, y4m: Path, seconds: float, server_args: list[str],
                  warmup: float = WARMUP_S) -> dict:
    from playwright.sync_api import sync_playwright

    from detstream.demo.browser import DemoProcess, camera_flags, launch, start_button

    with DemoProcess(*server_args, log=work / "server.log") as server, \
            sync_playwright() as playwright:
        browser = launch(playwright, camera_flags(y4m))
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url, wait_until="load")
        page.wait_for_selector(start_button("webcam"), timeout=60_000)
        page.click(start_button("webcam"))
        try:
            page.wait_for_function("() => (window.detstreamStats?.webcam?.shown || 0) > 5",
                                   timeout=120_000)
        except Exception as exc:  # say what the page and the server saw, not only "timeout"
            stats = page.evaluate("() => JSON.stringify(window.detstreamStats?.webcam || {})")
            status = page.locator("#ds-webcam").inner_text()[-300:]
            tail = server.log.read_text(errors="replace")[-1500:] if server.log else ""
            raise RuntimeError(f"the page showed no webcam frames in 120 s ({exc}); page "
                               f"stats {stats[:500]}; page text {status!r}; server log: "
                               f"{tail}") from None
        page.wait_for_timeout(warmup * 1000)
        before = server.status()
        start = page.evaluate("() => performance.now()")
        counts0 = page.evaluate(_COUNTS)
        page.wait_for_timeout(seconds * 1000)
        end = page.evaluate("() => performance.now()")
        counts1 = page.evaluate(_COUNTS)
        after = server.status()
        log = page.evaluate("() => window.detstreamStats.webcam.log")
        table = page.evaluate("() => { const s = window.detstreamStats.webcam; "
                              "return {stages: s.stages || {}, waits: s.waits || {}}; }")
        page.click("#ds-webcam .ds-stop")
        browser.close()
    window = [(t, lat) for t, lat in log if start <= t <= end]
    latencies = [lat for _, lat in window]
    first = [lat for t, lat in window if t <= start + 10_000]
    last = [lat for t, lat in window if t >= end - 10_000]
    frames = after["frames_total"] - before["frames_total"]
    cpu = after["cpu_seconds"] - before["cpu_seconds"]
    elapsed = (end - start) / 1000.0
    return {
        "seconds": round(elapsed, 1),
        "page_fps": round((counts1["shown"] - counts0["shown"]) / elapsed, 2),
        "latency_ms_p50": round(_pct(latencies, 50), 1),
        "latency_ms_p95": round(_pct(latencies, 95), 1),
        "latency_ms_p50_first_10s": round(_pct(first, 50), 1),
        "latency_ms_p50_last_10s": round(_pct(last, 50), 1),
        "frames_dropped": (counts1["dropped"] - counts0["dropped"])
        + (counts1["serverDropped"] - counts0["serverDropped"]),
        "frames_dropped_in_page": counts1["dropped"] - counts0["dropped"],
        "frames_dropped_on_server": counts1["serverDropped"] - counts0["serverDropped"],
        "frames_sent": counts1["sent"] - counts0["sent"],
        "server_fps": round(frames / elapsed, 2),
        "cpu_ms_per_frame": round(1000.0 * cpu / max(frames, 1), 2),
        "server_cpu_percent": round(100.0 * cpu / elapsed, 1),
        # The server's stage table over the measurement's last two seconds (ms, per second).
        "page_stages": table["stages"],
        "page_waits": table["waits"],
    }


_COUNTS = ("() => { const s = window.detstreamStats.webcam; return {shown: s.shown, "
           "sent: s.sent, dropped: s.dropped, serverDropped: s.serverDropped}; }")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _cli(*args: str, timeout: float = 900) -> None:
    import os

    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run([sys.executable, "-m", "detstream", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"detstream {args[0]} failed: {done.stderr.strip()[-500:]}")


def cli_source(frames: int) -> str:
    """The command line's camera: the fake camera's scene (:func:`write_y4m`'s), live and
    paced at its rate, ``frames`` long."""
    width, height, fps = CAMERA
    return (f"synthetic://?seed=5&size={width}x{height}&fps={fps}&frames={frames}&live=1"
            "&objects=6&camera_motion=0&min_size=32&max_size_frac=0.3")


def window_fps(times: list[float], start: float, seconds: float) -> float:
    """Frames per second of those whose time (seconds) lies in ``[start, start + seconds)``."""
    return sum(start <= t < start + seconds for t in times) / max(seconds, 1e-9)


def _measure_cli(work: Path, seconds: float, model: str, imgsz: int | None,
                 tracker: str | None, warmup: float = WARMUP_S) -> dict:
    """``detstream run`` on the paced camera for ``warmup + seconds``: its FPS over the
    measured window (frames out whose camera time lies in it), latency and stage table."""
    fps = CAMERA[2]
    # A second more than measured: the frames of the window's end are output before the end.
    frames = int((seconds + warmup + 1.0) * fps)
    stats, lines = work / "cli-stats.json", work / "cli.jsonl"
    _cli("run", "--source", cli_source(frames), *_model_args(model, imgsz, tracker),
         "--output", str(work / "cli.mp4"), "--save-json", str(lines),
         "--stats-json", str(stats))
    report = json.loads(stats.read_text())
    times = [json.loads(line)["time"] for line in lines.read_text().splitlines()]
    return {"cli_fps": round(window_fps(times, warmup, seconds), 2),
            "cli_fps_whole_run": report["fps"],
            "cli_latency_ms_p50": report["latency_ms"]["p50"],
            "cli_latency_ms_p95": report["latency_ms"]["p95"],
            "cli_stages": {name: {"ms": s["mean_ms"], "p95_ms": s["p95_ms"]}
                           for name, s in report["stages"].items()},
            "cli_waits": {name: {"ms": w["mean_ms"], "p95_ms": w["p95_ms"]}
                          for name, w in report.get("waits", {}).items()}}


def _upload_video(work: Path) -> Path:
    from detstream.demo.examples import EXAMPLE
    from detstream.engines.data.synthetic.sequence import write_sequence

    write_sequence(work / "upload", EXAMPLE)
    return work / "upload" / "video.mp4"


def _measure_upload(work: Path, video: Path, server_args: list[str], model: str,
                    imgsz: int | None, tracker: str | None) -> dict:
    from playwright.sync_api import sync_playwright

    from detstream.demo.browser import DemoProcess, launch

    with DemoProcess(*server_args, log=work / "server-upload.log") as server, \
            sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 1200})
        page.goto(server.url, wait_until="load")
        page.get_by_role("tab", name="Video file").click()
        page.set_input_files("#ds-upload input[type=file]", str(video))
        page.wait_for_selector("#ds-upload .file-name, #ds-upload table", timeout=60_000)
        started = time.perf_counter()
        page.click("#ds-process")
        page.wait_for_selector("#ds-upload-status [data-kind=ok], "
                               "#ds-upload-status [data-kind=warn], "
                               "#ds-upload-status [data-kind=error]", timeout=900_000)
        page_seconds = time.perf_counter() - started
        text = page.locator("#ds-upload-status").inner_text()
        browser.close()
    if "done:" not in text:
        raise RuntimeError(f"the page did not process {video.name}: {text}")
    stats_page = float(text.split("(")[1].split(" FPS")[0])
    stats = work / "upload-cli-stats.json"
    _cli("run", "--source", str(video), *_model_args(model, imgsz, tracker),
         "--output", str(work / "upload-cli.mp4"), "--save-json", str(work / "u.jsonl"),
         "--save-mot", str(work / "u.txt"), "--stats-json", str(stats))
    cli = float(json.loads(stats.read_text())["fps"])
    return {"upload_video": video.name, "upload_fps": stats_page,
            "upload_cli_fps": cli, "upload_vs_cli": round(stats_page / max(cli, 1e-9), 3),
            "upload_click_to_done_s": round(page_seconds, 1)}


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


def stage_lines(f: dict) -> list[str]:
    """The server's stage table beside the command line's (each stage's own work, ms per
    frame it worked on; then the waits), when the figures have them."""
    from detstream.stream.pipeline.stage_times import WAIT_LABELS, in_order, split_capture

    if "page_stages" not in f or "cli_stages" not in f:
        return []
    # The page's table has a live source's capture among the waits already.
    cli_stages, cli_waits = split_capture(f["cli_stages"], f.get("cli_waits", {}), live=True)

    def cell(table: dict, name: str) -> str:
        return f"{table[name]['ms']:>9.2f}" if name in table else f"{'-':>9}"

    lines = [f"  stage times, ms   {'page':>9}{'run':>9}   (own work per frame it worked on; "
             "page: server, last 2 s; run: whole run)"]
    for name, _ in in_order({**cli_stages, **f["page_stages"]}):
        lines.append(f"    {name:<15}{cell(f['page_stages'], name)}{cell(cli_stages, name)}")
    waits = {**cli_waits, **f.get("page_waits", {})}
    if waits:
        lines.append("  waits, ms (not work)")
        for name, _ in in_order(waits):
            lines.append(f"    {name:<15}{cell(f.get('page_waits', {}), name)}"
                         f"{cell(cli_waits, name)}   {WAIT_LABELS.get(name, name)}")
    return lines


def format_figures(f: dict) -> str:
    ratio_met = f["page_vs_cli"] >= TARGET_RATIO
    latency_met = (f["latency_ms_p50"] <= TARGET_P50_MS
                   and f["latency_ms_p95"] <= TARGET_P95_MS)
    cli_latency = ([f"  detstream run      {f['cli_latency_ms_p50']:7.1f} / "
                    f"{f['cli_latency_ms_p95']:.1f} ms capture to written"]
                   if "cli_latency_ms_p50" in f else [])
    lines = [
        f"webcam {f['camera']}, model {f['model']}"
        + (f" at {f['imgsz']}" if f.get("imgsz") else "") + f", tracker {f['tracker']}, "
        f"{f['seconds']:.0f} s",
        f"  page FPS           {f['page_fps']:7.2f}   (detstream run: {f['cli_fps']:.2f}; "
        f"ratio {f['page_vs_cli']:.2f}, target >= {TARGET_RATIO:g}: {_verdict(ratio_met)})",
        f"  latency p50 / p95  {f['latency_ms_p50']:7.1f} / {f['latency_ms_p95']:.1f} ms "
        f"capture to display (targets {TARGET_P50_MS:g} / {TARGET_P95_MS:g}: "
        f"{_verdict(latency_met)})",
        *cli_latency,
        f"  p50 first / last 10 s  {f['latency_ms_p50_first_10s']:.1f} / "
        f"{f['latency_ms_p50_last_10s']:.1f} ms",
        f"  frames dropped     {f['frames_dropped']:7d}   (in the page "
        f"{f['frames_dropped_in_page']}, on the server {f['frames_dropped_on_server']}; "
        f"sent {f['frames_sent']})",
        f"  server CPU         {f['cpu_ms_per_frame']:7.2f} ms/frame "
        f"({f['server_cpu_percent']:.0f} % of one core)",
        *stage_lines(f),
    ]
    if "upload_fps" in f:
        lines.append(f"upload {f['upload_video']}: page {f['upload_fps']:.2f} FPS, detstream "
                     f"run {f['upload_cli_fps']:.2f} FPS (ratio {f['upload_vs_cli']:.2f}, "
                     "target >= 0.9)")
    return "\n".join(lines)


