"""The Gradio page in a real browser: Debian's headless Chromium driven by Playwright, with a
fake camera playing a synthetic scene, against ``detstream demo`` on a loopback port.

Screenshots of each tab are saved under ``runs/test-artifacts/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import playwright.sync_api as playwright_api
import pytest

from detstream.demo.browser import (
    DemoProcess,
    camera_flags,
    chromium_path,
    launch,
    start_button,
    write_y4m,
)
from detstream.engines.data.synthetic import SceneConfig
from detstream.engines.data.synthetic.sequence import write_sequence
from detstream.stream.draw import PALETTE
from tests.conftest import REPO, run_cli

ARTIFACTS = REPO / "runs" / "test-artifacts"


@pytest.fixture(scope="module")
def chromium():
    try:
        return chromium_path()
    except Exception as exc:  # make test installs it: a missing browser is a failure
        pytest.fail(f"headless Chromium is missing ({exc}); run make test, which installs it")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Videos and bad uploads, a camera file, and an allowed folder beside a forbidden one."""
    root = tmp_path_factory.mktemp("demo")
    allowed, outside = root / "allowed", root / "outside"
    allowed.mkdir()
    outside.mkdir()
    write_sequence(root / "clip", SceneConfig(width=320, height=180, fps=24, frames=60, seed=3,
                                              objects=6, min_size=24))
    video = allowed / "clip.mp4"
    video.write_bytes((root / "clip" / "video.mp4").read_bytes())
    (outside / "secret.mp4").write_bytes(video.read_bytes())
    (outside / "evil.onnx").write_bytes(b"not a model")
    data = video.read_bytes()
    bad = root / "bad"
    bad.mkdir()
    (bad / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 2])
    camera = write_y4m(root / "camera.y4m", 320, 240, 30, frames=60, seed=5)
    return {"allowed": allowed, "outside": outside, "video": video, "bad": bad,
            "camera": camera}


@pytest.fixture(scope="module")
def server(chromium, files):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with DemoProcess("--allow-streams", "--allow-dir", str(files["allowed"]),
                     "--max-sessions", "1", log=ARTIFACTS / "demo-server.log") as process:
        yield process


@pytest.fixture(scope="module")
def browser(server, files):
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright, camera_flags(files["camera"]))
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(server.url, wait_until="load")
    page.wait_for_selector(start_button("webcam"), timeout=60_000)
    yield page
    context.close()
    wait_for_no_sessions(server)


def wait_for_no_sessions(server, timeout: float = 10.0) -> float:
    """Seconds until the server runs no session (fails after ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not server.status()["sessions"]:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"sessions still running: {server.status()['sessions']}")


def stats(page, mode: str = "webcam") -> dict:
    return page.evaluate(f"() => window.detstreamStats.{mode}")


def start_webcam(page, frames: int = 10) -> None:
    page.click(start_button("webcam"))
    page.wait_for_function(f"() => (window.detstreamStats?.webcam?.shown || 0) >= {frames}",
                           timeout=60_000)


def label_colour_fraction(image: np.ndarray, box: list) -> float:
    """How much of a box's label background has the box's colour (BGR image)."""
    x1, y1, track_id = int(round(box[0])), int(round(box[1])), int(box[4])
    text = f"#{track_id} {box[5]} {box[6]:.2f}"
    font = max(0.35, image.shape[0] / 1400)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
    top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1
    patch = image[top:top + th + base + 2, x1:x1 + tw + 2].reshape(-1, 3).astype(int)
    if not len(patch):
        return 0.0
    colour = PALETTE[track_id % len(PALETTE)].astype(int)
    return float((np.abs(patch - colour).max(axis=1) < 60).mean())


def test_webcam_frames_come_back_annotated(page, server):
    before = server.status()["frames_total"]
    start_webcam(page, frames=20)
    page.wait_for_timeout(1500)
    shown = page.evaluate("""() => {
        const canvas = document.querySelector('#ds-webcam .ds-out');
        return {png: canvas.toDataURL('image/png'), boxes: window.detstreamStats.webcam.boxes};
    }""")
    image = cv2.imdecode(np.frombuffer(__import__("base64").b64decode(
        shown["png"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (240, 320)
    tracked = [box for box in shown["boxes"] if box[4] >= 0 and box[1] >= 14]
    assert tracked, f"no tracked box to check in {shown['boxes']}"
    fractions = [label_colour_fraction(image, box) for box in tracked]
    assert max(fractions) > 0.3, fractions  # the labels are drawn in the track's colour
    after = server.status()
    assert after["frames_total"] - before >= 20
    assert [s["kind"] for s in after["sessions"]] == ["webcam"]
    assert float(page.inner_text("#ds-webcam .ds-fps")) > 0
    assert float(page.inner_text("#ds-webcam .ds-lat")) > 0
    webcam = stats(page)
    assert len(webcam["latency"]) >= 10
    # The stage table: the detector's own time even though it runs beside the frames (on no
    # frame's timings), and the waits on rows of their own.
    assert webcam["stages"]["infer"]["ms"] > 0 and "infer" not in webcam["timings"]
    assert "capture" not in webcam["stages"] and "next frame" in webcam["waits"]
    table = page.inner_text("#ds-webcam .ds-timings")
    assert "infer" in table and "track" in table
    assert table.index("waits (not work)") > table.index("track")
    assert "capture waited for the next frame" in table
    page.screenshot(path=str(ARTIFACTS / "demo-webcam.png"))
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "demo-webcam-phone.png"), full_page=True)


def test_settings_apply_to_a_running_webcam(page):
    start_webcam(page)
    assert any(box[4] >= 0 for box in stats(page)["boxes"] or [[0, 0, 0, 0, 1]])
    page.locator("#ds-tracker").get_by_text("none", exact=True).click()
    page.wait_for_function("""() => {
        const s = window.detstreamStats.webcam;
        return s.boxes && s.boxes.length > 0 && s.boxes.every((b) => b[4] === -1);
    }""", timeout=20_000)
    assert "applied" in page.inner_text("#ds-settings-note")


def test_closing_the_tab_stops_its_processing(browser, server):
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url, wait_until="load")
    page.wait_for_selector(start_button("webcam"), timeout=60_000)
    start_webcam(page)
    assert server.status()["active_sessions"] == 1
    page.close()
    context.close()
    seconds = wait_for_no_sessions(server, timeout=5.0)
    print(f"sessions back to zero {seconds:.2f} s after the tab closed")


def test_a_second_page_waits_for_its_turn(browser, server):
    first = browser.new_context().new_page()
    second = browser.new_context().new_page()
    for page in (first, second):
        page.goto(server.url, wait_until="load")
        page.wait_for_selector(start_button("webcam"), timeout=60_000)
    start_webcam(first)
    second.click(start_button("webcam"))
    second.wait_for_function("() => window.detstreamStats.webcam.state === 'queued'",
                             timeout=20_000)
    assert "number 1 in line" in second.inner_text("#ds-webcam .ds-message")
    assert server.status()["queued"] == 1
    first.click("#ds-webcam .ds-stop")
    second.wait_for_function("() => window.detstreamStats.webcam.shown >= 5", timeout=60_000)
    second.click("#ds-webcam .ds-stop")
    first.context.close()
    second.context.close()
    wait_for_no_sessions(server)


def click_frame(page, viewer: str, x: float, y: float) -> None:
    """Click the frame pixel ``(x, y)`` of a viewer's output canvas (letterboxed in its box)."""
    canvas = page.locator(f"{viewer} .ds-out")
    width, height = canvas.evaluate("(c) => [c.width, c.height]")
    box = canvas.bounding_box()
    scale = min(box["width"] / width, box["height"] / height)
    page.mouse.click(box["x"] + (box["width"] - width * scale) / 2 + x * scale,
                     box["y"] + (box["height"] - height * scale) / 2 + y * scale)


def counter(page, rule: str, column: str) -> int:
    """A number of the live viewer's counters table (``-1``: not shown)."""
    cell = page.locator(f"#ds-webcam .ds-counters tr[data-rule={rule}] .ds-n-{column}")
    return int(cell.inner_text()) if cell.count() else -1


def test_lines_and_areas_drawn_on_the_live_video_count_and_list_events(page, server,
                                                                      tmp_path):
    start_webcam(page)
    page.click("#ds-webcam .ds-tool[data-tool=line]")
    for _ in range(2):  # a line of no length: refused in the option's words, nothing changes
        click_frame(page, "#ds-webcam", 100, 100)
    page.wait_for_selector("#ds-webcam .ds-rules-hint[data-kind=error]", timeout=10_000)
    assert page.inner_text("#ds-webcam .ds-rules-hint") == (
        "Not added: lines: line 'line1' starts and ends at the same point")
    page.click("#ds-webcam .ds-tool[data-tool=line]")
    click_frame(page, "#ds-webcam", 4, 120)  # across the middle of the 320x240 camera
    click_frame(page, "#ds-webcam", 316, 120)
    page.wait_for_function("() => window.detstreamStats.webcam.restarts === 1",
                           timeout=20_000)
    page.click("#ds-webcam .ds-tool[data-tool=area]")
    for x, y in ((60, 50), (260, 50), (260, 190), (60, 190), (62, 52)):  # closed on the first
        click_frame(page, "#ds-webcam", x, y)
    page.wait_for_function("() => window.detstreamStats.webcam.restarts === 2",
                           timeout=20_000)
    assert "counts start over" in page.inner_text("#ds-webcam .ds-rules-hint")
    shown = stats(page)["shown"]
    page.wait_for_selector("#ds-webcam .ds-counters tr[data-rule=area1] .ds-n-entries",
                           timeout=20_000)
    assert counter(page, "line1", "in") >= 0 and counter(page, "area1", "entries") >= 0
    # The scene's objects move: crossings, entries and exits are counted and listed.
    page.wait_for_function("""() => {
        const a = window.detstreamStats.webcam.analytics;
        return a && a.lines[0].in + a.lines[0].out > 0 && a.areas[0].entries > 0
            && document.querySelectorAll('#ds-webcam .ds-events li').length > 1;
    }""", timeout=30_000)
    page.wait_for_timeout(400)  # the panel is drawn four times a second
    line = counter(page, "line1", "in") + counter(page, "line1", "out")
    assert line > 0 and counter(page, "area1", "entries") > 0
    events = page.locator("#ds-webcam .ds-events li")
    kinds = set(events.evaluate_all("(items) => items.map((li) => li.dataset.kind)"))
    assert kinds & {"line_crossed", "zone_entered"}, kinds
    assert "#" in events.first.inner_text()  # the track
    assert stats(page)["shown"] > shown + 10  # frames kept coming after both restarts
    session = server.status()["sessions"][0]
    assert session["kind"] == "webcam" and session["state"] == "running"
    # Each event's clip is listed once finished (2 s after its last event); its link serves
    # the MP4 from this page's own clip folder.
    page.wait_for_selector("#ds-webcam .ds-clip-list li", timeout=20_000)
    clip = page.locator("#ds-webcam .ds-clip-list li").first
    rules = clip.locator(".ds-clip-play b").inner_text().split(", ")  # one clip a track
    assert set(rules) <= {"line1", "area1"}, rules
    assert "#" in clip.inner_text()  # the track it follows
    save = clip.locator(".ds-clip-save")
    assert save.get_attribute("download") == clip.get_attribute("data-name")
    reply = page.request.get(save.get_attribute("href"))
    body = reply.body()
    assert reply.status == 200 and reply.headers["content-type"] == "video/mp4"
    assert len(body) > 1000 and body[4:8] == b"ftyp"  # an MP4's first box
    saved = tmp_path / "clip.mp4"
    saved.write_bytes(body)
    video = cv2.VideoCapture(str(saved))
    ok, first = video.read()
    video.release()
    assert ok and first.shape[:2] == (240, 320)  # the camera's annotated frames, playable
    page.screenshot(path=str(ARTIFACTS / "demo-rules.png"))
    page.set_viewport_size({"width": 640, "height": 480})
    page.locator("#ds-webcam .ds-rules-bar").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "demo-rules-640x480.png"))
    page.locator("#ds-webcam .ds-clips").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "demo-clips-640x480.png"))
    page.click("#ds-webcam .ds-clear-rules")
    page.wait_for_function("() => window.detstreamStats.webcam.restarts === 3",
                           timeout=20_000)
    page.wait_for_selector("#ds-webcam .ds-analytics", state="hidden", timeout=5_000)
    assert page.locator("#ds-webcam .ds-clips").is_visible()  # the files are still there


def upload(page, path: Path, timeout: float = 120_000) -> str:
    page.get_by_role("tab", name="Video file").click()
    clear = page.locator("#ds-upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.set_input_files("#ds-upload input[type=file]", str(path))
    page.wait_for_function(f"() => document.querySelector('#ds-upload').innerText"
                           f".includes({json.dumps(path.stem)})", timeout=30_000)
    # Forget the last outcome shown, so the wait below sees this upload's.
    page.evaluate("() => document.querySelector('#ds-upload-status .ds-status')?.remove()")
    page.click("#ds-process")
    page.wait_for_selector("#ds-upload-status [data-kind=ok], #ds-upload-status "
                           "[data-kind=warn], #ds-upload-status [data-kind=error]",
                           timeout=timeout)
    return page.inner_text("#ds-upload-status")


def test_upload_processes_every_frame_and_offers_the_results(page, files):
    status = upload(page, files["video"])
    assert status.startswith("done: 60 frames"), status
    page.wait_for_function("() => { const v = document.querySelector('#ds-video video');"
                           " return v && v.readyState >= 2 && v.duration > 0; }",
                           timeout=30_000)
    links = page.eval_on_selector_all("#ds-files a", "els => els.map((a) => a.href)")
    jsonl = next(link for link in links if link.endswith(".jsonl"))
    lines = [json.loads(line) for line in page.request.get(jsonl).text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(60))
    tracks = {d["track_id"] for line in lines for d in line["detections"]
              if d["track_id"] >= 0}
    boxes = sum(len(line["detections"]) for line in lines)
    summary = page.inner_text("#ds-summary")
    assert "60 frames" in summary and f"{len(tracks)} tracks" in summary
    rows = {cells[0]: int(cells[1]) for row in page.locator("#ds-summary tbody tr").all()
            if (cells := [c.strip() for c in row.inner_text().split("\t")])}
    assert sum(rows.values()) == boxes > 0
    page.screenshot(path=str(ARTIFACTS / "demo-upload.png"), full_page=True)


def test_a_line_drawn_on_an_uploaded_video_s_first_frame_is_counted(page, files):
    page.get_by_role("tab", name="Video file").click()
    page.set_input_files("#ds-upload input[type=file]", str(files["video"]))
    image = page.locator("#ds-rules-image img")
    image.wait_for(timeout=30_000)
    width, height = image.evaluate("(i) => [i.naturalWidth, i.naturalHeight]")
    assert (width, height) == (320, 180)  # the video's own first frame
    for x in (2, 318):  # across the middle, in the frame's pixels
        box = image.bounding_box()
        scale = min(box["width"] / width, box["height"] / height, 1)
        page.mouse.click(box["x"] + (box["width"] - width * scale) / 2 + x * scale,
                         box["y"] + (box["height"] - height * scale) / 2 + 90 * scale)
        page.wait_for_timeout(300)
    page.wait_for_function("() => document.querySelector('#ds-rules-note').innerText"
                           ".includes('line1 added')", timeout=10_000)
    assert "line line1 (2,90 → 318,90)" in page.inner_text("#ds-rules-note")
    page.click("#ds-process")
    page.wait_for_selector("#ds-upload-status [data-kind=ok]", timeout=120_000)
    page.wait_for_function("() => document.querySelector('#ds-summary').innerText"
                           ".includes('line1')", timeout=10_000)
    summary = page.inner_text("#ds-summary")
    assert "Lines and areas" in summary and "Events" in summary, summary


@pytest.mark.parametrize("name, message", [
    ("notes.mp4", "is not a video this server can read"),
    ("empty.mp4", "empty"),
    ("truncated.mp4", "truncated"),
])
def test_bad_uploads_get_a_clear_message_and_the_server_goes_on(page, files, name, message):
    status = upload(page, files["bad"] / name)
    assert message in status, status
    assert "Traceback" not in status
    status = upload(page, files["video"])  # the next upload is served as usual
    assert status.startswith("done: 60 frames"), status


def test_paths_outside_the_allowed_folders_are_refused(page, files):
    page.get_by_role("tab", name="Stream").click()
    for bad in ("/etc/passwd", str(files["allowed"] / ".." / "outside" / "secret.mp4"),
                str(files["outside"] / "secret.mp4")):
        page.fill("#ds-stream .ds-uri", bad)
        page.wait_for_selector(start_button("stream"), timeout=60_000)
        page.click(start_button("stream"))
        page.wait_for_function("() => window.detstreamStats.stream.message.includes('refused')",
                               timeout=20_000)
        page.wait_for_function("() => window.detstreamStats.stream.state === 'idle'")
        page.evaluate("() => { window.detstreamStats.stream.message = ''; }")
    model = page.locator("#ds-model input")
    model.fill(str(files["outside"] / "evil.onnx"))
    model.press("Enter")
    page.wait_for_function("() => document.querySelector('#ds-settings-note')"
                           ".innerText.includes('refused')", timeout=20_000)


def test_stream_tab_plays_an_allowed_file_with_the_overlay(page, files, server):
    page.get_by_role("tab", name="Stream").click()
    page.fill("#ds-stream .ds-uri", str(files["video"]))
    page.wait_for_selector(start_button("stream"), timeout=60_000)
    page.click(start_button("stream"))
    page.wait_for_function("() => window.detstreamStats.stream.shown >= 10", timeout=60_000)
    assert [s["kind"] for s in server.status()["sessions"]] == ["stream"]
    page.screenshot(path=str(ARTIFACTS / "demo-stream.png"))
    page.wait_for_function("() => window.detstreamStats.stream.state === 'idle'",
                           timeout=60_000)  # the file ends: the session ends with it
    assert stats(page, "stream")["shown"] >= 10


def test_demo_command_rejects_a_missing_folder_in_one_line():
    done = run_cli("demo", "--allow-dir", "/no/such/folder", timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "detstream demo: error: --allow-dir /no/such/folder is not a folder"]


def test_bench_demo_prints_its_figures(chromium, tmp_path):
    out = tmp_path / "bench.json"
    done = run_cli("bench", "demo", "--seconds", "3", "--warmup", "1", "--no-upload", "--json",
                   str(out), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    for key in ("page_fps", "cli_fps", "latency_ms_p50", "latency_ms_p95", "frames_dropped",
                "cpu_ms_per_frame", "seconds"):
        assert key in figures
    assert figures["page_fps"] > 0 and figures["cli_fps"] > 0
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p95"]
    assert "page FPS" in done.stdout


def test_stream_tab_plays_a_loopback_network_stream(page, server):
    from tests.helpers.mjpeg_server import MjpegServer

    camera = MjpegServer(fps=25)
    camera.start()
    try:
        page.get_by_role("tab", name="Stream").click()
        page.fill("#ds-stream .ds-uri", camera.url)
        page.wait_for_selector(start_button("stream"), timeout=60_000)
        page.click(start_button("stream"))
        page.wait_for_function("() => window.detstreamStats.stream.shown >= 15",
                               timeout=60_000)
        session = server.status()["sessions"][0]
        assert session["kind"] == "stream" and session["frames"] >= 15
        page.click("#ds-stream .ds-stop")
    finally:
        camera.stop()


def test_uploads_over_the_limit_are_refused_in_the_page(browser, files, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(files["video"].read_bytes() + b"\0" * (2 * 1024 * 1024))
    with DemoProcess("--max-upload-mb", "1") as small:
        page = browser.new_context().new_page()
        page.goto(small.url, wait_until="load")
        page.get_by_role("tab", name="Video file").click()
        page.set_input_files("#ds-upload input[type=file]", str(big))
        page.wait_for_function("() => /exceed|too large|maximum/i.test(document.body.innerText)",
                               timeout=30_000)
        page.context.close()
        assert small.status()["sessions"] == []
