"""``detstream bench fleet``: what running through Ray costs, and how fast a fleet recovers.

**Overhead.** The same N streams run twice on this machine: as one plain multi-stream
``detstream run`` process (one model, one batching inference service), and as ``detstream
fleet run`` on a local Ray instance whose workers hold the same cores. Each side's aggregate
FPS is the streams' frames over the longest stream's processing time (from the streams'
statistics: Ray starting, workers starting and models loading are left out of both).

**Recovery** (``--kill``). A fleet of two workers runs the streams; once the first worker's
first stream has written ``kill_after`` frames its process is killed (SIGKILL). Measured:
from the kill to the controller noticing, and to the moved stream's first new frame written
on the other worker (its progress journal moving past the resume point). The outputs are then
checked: every frame of every stream exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from detstream.stream.bench.common import BenchModel, Log, quiet
from detstream.stream.bench.multistream import run_batched


def _cameras(folder: Path, source: str, streams: int, model: BenchModel, frames: int,
             tracker: str | None, workers: list[dict]) -> Path:
    defaults: dict = {"model": str(model.model), "backend": model.backend,
                      "tracker": tracker or "none",
                      "outputs": {"json": "fleet_{name}.jsonl"}}
    if model.imgsz:
        defaults["imgsz"] = model.imgsz
    uri = _limited(source, frames)
    cameras = {"defaults": defaults,
               "streams": [{"name": f"s{i}", "uri": uri} for i in range(streams)],
               "workers": workers}
    path = folder / "cameras.yaml"
    path.write_text(yaml.safe_dump(cameras), encoding="utf-8")
    return path


def _limited(source: str, frames: int) -> str:
    """``source`` cut to ``frames`` frames (a fleet's streams take no --max-frames)."""
    if not source.startswith("synthetic://"):
        raise ValueError("bench fleet runs synthetic:// sources (their length is in the URI)")
    base, _, query = source.partition("?")
    parts = [p for p in query.split("&") if p and not p.startswith("frames=")]
    return f"{base}?{'&'.join([*parts, f'frames={frames}'])}"


def _aggregate(streams: list[dict]) -> float:
    """Frames out of streams that ran side by side, over the longest one's processing
    time."""
    seconds = max(s["frames_out"] / s["fps"] for s in streams if s["fps"])
    return sum(s["frames_out"] for s in streams) / max(seconds, 1e-9)


class FleetProcess:
    """``detstream fleet run`` in a subprocess (a local Ray instance, the endpoint on a free
    port): its stderr lines, its endpoint's URL once announced, and requests to it.

    Args:
        cameras: the cameras YAML.
        stats: its ``--stats-json`` file.
        *extra: more ``fleet run`` options (``--cpus 2``...).
    """

    def __init__(self, cameras: Path, stats: Path, *extra: str) -> None:
        self.stats = stats
        self.process = subprocess.Popen(
            [sys.executable, "-m", "detstream", "fleet", "run", "--sources", str(cameras),
             "--address", "local", "--status-port", "0", "--stats-json", str(stats), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url: str | None = None
        self.lines: list[str] = []
        self._announced = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip())
            if line.startswith("fleet status: ") and self.url is None:
                self.url = line.split()[2].rsplit("/status", 1)[0]
                self._announced.set()

    def started(self, timeout: float = 300.0) -> bool:
        """Wait until the endpoint is announced (the workers run); False on time-out."""
        return self._announced.wait(timeout)

    def ask(self, path: str = "/status", method: str = "GET", body: dict | None = None) -> dict:
        """One request to the endpoint; its JSON answer."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=150) as answer:
            return json.loads(answer.read())

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the run to end; its exit code."""
        return self.process.wait(timeout)


def run_fleet(cameras: Path, cpus: int, stats: Path) -> dict:
    """Run ``cameras`` to the end; the fleet's statistics."""
    fleet = FleetProcess(cameras, stats, "--cpus", str(cpus))
    _check(fleet.wait(), fleet)
    return json.loads(stats.read_text(encoding="utf-8"))


def _check(code: int, fleet: FleetProcess) -> None:
    if code != 0:
        raise RuntimeError(f"the fleet run failed (exit {code}): "
                           + (fleet.lines[-1] if fleet.lines else "no message"))


def _journal_frame(path: Path) -> int | None:
    try:
        first = path.read_bytes().split(b"\n", 1)[0]
        return int(json.loads(first)["frame"])
    except (OSError, ValueError, KeyError):
        return None


def measure_recovery(folder: Path, source: str, streams: int, model: BenchModel, frames: int,
                     tracker: str | None, kill_after: int) -> dict:
    """Kill a worker mid-run; the seconds to notice it and to the moved stream's first new
    frame, and whether every frame landed exactly once."""
    cameras = _cameras(folder, source, streams, model, frames, tracker,
                       [{"name": "w0", "cpus": 1, "capacity_fps": 1000},
                        {"name": "w1", "cpus": 1, "capacity_fps": 1000}])
    stats = folder / "recovery.json"
    fleet = FleetProcess(cameras, stats, "--cpus", "2")
    if not fleet.started():
        fleet.process.kill()
        raise RuntimeError("the fleet did not start: " + " / ".join(fleet.lines[-3:]))
    victim = None
    while victim is None:
        if fleet.process.poll() is not None:
            raise RuntimeError("the fleet ended before a worker could be killed; give more "
                               "--frames")
        state = fleet.ask()
        for worker in state["workers"]:
            mine = [s for s in state["streams"] if s["name"] in worker["streams"]]
            if mine and worker["name"] == "w0" and mine[0]["frames_out"] >= kill_after:
                victim = (worker, mine[0]["name"])
        time.sleep(0.05)
    worker, stream = victim
    os.kill(worker["pid"], signal.SIGKILL)
    killed = time.perf_counter()
    noticed = resumed = None
    start_frame = None
    journal = folder / f"fleet_{stream}.jsonl.progress"
    while resumed is None and fleet.process.poll() is None:
        if noticed is None:
            state = fleet.ask()
            moved = [e for e in state["events"] if e["event"] == "stream_moved"]
            if any(e["event"] == "worker_lost" for e in state["events"]):
                noticed = time.perf_counter() - killed
            if moved:
                start_frame = moved[0]["start_frame"]
        if start_frame is not None:
            frame = _journal_frame(journal)
            if frame is not None and frame >= start_frame:
                resumed = time.perf_counter() - killed
        time.sleep(0.01)
    _check(fleet.wait(), fleet)
    report = json.loads(stats.read_text(encoding="utf-8"))
    exact = True
    for i in range(streams):
        rows = (folder / f"fleet_s{i}.jsonl").read_text(encoding="utf-8").splitlines()
        exact &= [json.loads(r)["frame"] for r in rows] == list(range(frames))
    return {"killed_worker": worker["name"], "moved_stream": stream,
            "killed_after_frames": kill_after, "resumed_at_frame": start_frame,
            "noticed_s": None if noticed is None else round(noticed, 3),
            "first_new_frame_s": None if resumed is None else round(resumed, 3),
            "every_frame_once": exact,
            "events": [e["message"] for e in report["events"]]}


def bench_fleet(source: str, streams: int = 4, model: BenchModel | None = None,
                frames: int = 300, tracker: str | None = "botsort", workers: int = 1,
                kill: bool = False, kill_after: int = 30, log: Log = quiet) -> dict:
    """Plain multi-stream process against the fleet on the same cores (and, with ``kill``,
    the recovery figures); a JSON-able dict."""
    model = model or BenchModel()
    cpus = os.cpu_count() or 1
    share = max(1, cpus // workers)
    uri = _limited(source, frames)
    with tempfile.TemporaryDirectory(prefix="detstream-fleet-") as tmp:
        folder = Path(tmp)
        log(f"plain: one process, {streams} streams of {frames} frames")
        plain = run_batched(uri, streams, model, frames, tracker, folder)
        log(f"fleet: {workers} Ray workers of {share} CPUs, {streams} streams of {frames} "
            "frames")
        cameras = _cameras(folder, source, streams, model, frames, tracker,
                           [{"name": f"w{i}", "cpus": share, "capacity_fps": 1000}
                            for i in range(workers)])
        fleet = run_fleet(cameras, cpus, folder / "fleet.json")
        result = {
            "source": uri, "streams": streams, "frames_per_stream": frames,
            "model": str(model.model), "tracker": tracker or "none", "cpus": cpus,
            "fleet_workers": workers, "cpus_per_worker": share,
            "plain_fps": round(_aggregate(plain["streams"]), 2),
            "fleet_fps": round(_aggregate(fleet["streams"]), 2),
            "fleet_inference": [w["inference"] for w in fleet["workers"]],
            "plain_inference": plain["inference"],
        }
        result["fleet_vs_plain"] = round(result["fleet_fps"] / max(result["plain_fps"], 1e-9),
                                         3)
        if kill:
            log(f"recovery: two workers, killing w0 after {kill_after} frames")
            result["recovery"] = measure_recovery(folder, source, streams, model, frames,
                                                  tracker, kill_after)
    return result


def print_fleet(result: dict) -> None:
    print(f"{result['streams']} streams of {result['frames_per_stream']} frames, "
          f"{result['model']}, tracker {result['tracker']}, {result['cpus']} CPUs")
    print(f"  one plain process        {result['plain_fps']:8.1f} FPS in all")
    print(f"  fleet, {result['fleet_workers']} worker(s) of {result['cpus_per_worker']} CPUs "
          f"{result['fleet_fps']:8.1f} FPS in all")
    print(f"  fleet / plain {result['fleet_vs_plain']:.2f}x")
    recovery = result.get("recovery")
    if recovery:
        print(f"  killed {recovery['killed_worker']} after {recovery['killed_after_frames']} "
              f"frames of {recovery['moved_stream']}: noticed in {recovery['noticed_s']} s, "
              f"first new frame after {recovery['first_new_frame_s']} s (resumed at frame "
              f"{recovery['resumed_at_frame']}); every frame once: "
              f"{recovery['every_frame_once']}")
