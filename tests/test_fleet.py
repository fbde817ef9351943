"""The fleet on Ray: the cameras YAML is checked with one-line errors, placement never exceeds
a worker's capacity and reports what does not fit, and four synthetic streams on two CPU
workers of a local Ray instance write exactly what single-process ``detstream run`` writes
for each of them, with statistics that add up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from detstream.engines.errors import UserInputError
from detstream.stream.fleet.config import DEFAULT_FPS, load_fleet, parse_fleet
from detstream.stream.fleet.placement import Demand, Slot, place
from tests.conftest import REPO, run_cli

# ---------------------------------------------------------------------------- placement


def _load(placement, demands):
    fps = {d.name: d.fps for d in demands}
    return {w: sum(fps[n] for n in names) for w, names in placement.assigned.items()}


@pytest.mark.parametrize("seed", range(8))
def test_placement_never_exceeds_capacity_and_places_or_reports_every_stream(seed):
    rng = np.random.default_rng(seed)
    models = ["m1@320", "m2@640"]
    demands = [Demand(f"s{i}", float(rng.choice([5, 10, 12.5, 25, 30])), str(rng.choice(models)),
                      gpu=bool(rng.random() < 0.2), priority=int(rng.integers(0, 3)))
               for i in range(int(rng.integers(3, 25)))]
    slots = [Slot(f"w{i}", {m: float(rng.choice([20, 40, 90])) for m in models},
                  gpus=float(rng.random() < 0.3)) for i in range(int(rng.integers(1, 5)))]
    placement = place(demands, slots)
    load = _load(placement, demands)
    by_name = {d.name: d for d in demands}
    for slot in slots:
        names = placement.assigned[slot.name]
        assert len({by_name[n].model for n in names}) <= 1  # one model per worker
        if names:
            assert load[slot.name] <= slot.capacity[by_name[names[0]].model] + 1e-9
            assert load[slot.name] == pytest.approx(placement.load[slot.name])
        assert slot.gpus > 0 or not any(by_name[n].gpu for n in names)
    placed = [n for names in placement.assigned.values() for n in names]
    assert sorted(placed + list(placement.shortage)) == sorted(by_name)  # each exactly once
    assert len(placed) == len(set(placed))
    # deterministic: the same inputs, in any order of streams, give the same placement
    again = place(list(reversed(demands)), slots)
    assert again.assigned == placement.assigned and again.shortage == placement.shortage


def test_placement_spreads_load_and_reports_the_shortage():
    demands = [Demand(n, 10.0, "m") for n in "abcd"] + [Demand("big", 50.0, "m"),
                                                         Demand("vip", 15.0, "m", priority=5)]
    slots = [Slot("w0", {"m": 40.0}), Slot("w1", {"m": 40.0})]
    placement = place(demands, slots)
    # vip first (priority), big next (largest) but it fits nowhere, then a-d by name, each
    # where the most capacity stays free
    assert placement.assigned == {"w0": ["vip", "c"], "w1": ["a", "b", "d"]}
    assert placement.load == {"w0": 25.0, "w1": 30.0}
    assert list(placement.shortage) == ["big"]
    assert "needs 50 frames/s and the most free capacity is 40 frames/s (on w1)" in \
        placement.shortage["big"]


@pytest.mark.parametrize(("demand", "slots", "reason"), [
    (Demand("s", 5.0, "m", gpu=True), [Slot("cpu", {"m": 99.0})], "needs a GPU"),
    (Demand("s", 5.0, "other"), [Slot("w", {"m": 99.0})], "no worker can run model other"),
    (Demand("s", 5.0, "m"), [], "no worker"),
])
def test_placement_says_why_a_stream_fits_nowhere(demand, slots, reason):
    placement = place([demand], slots)
    assert reason in placement.shortage["s"]


def test_a_worker_serves_one_model():
    demands = [Demand("a", 5.0, "m1", priority=1), Demand("b", 5.0, "m2")]
    placement = place(demands, [Slot("w", {"m1": 99.0, "m2": 99.0})])
    assert placement.assigned == {"w": ["a"]}
    assert "serves another model" in placement.shortage["b"]


# ---------------------------------------------------------------------------- the YAML

GOOD = {"defaults": {"imgsz": 320, "outputs": {"json": "out/{name}.jsonl"}},
        "streams": [{"name": "a", "uri": "synthetic://?seed=1&fps=12"},
                    {"name": "b", "uri": "clip.mp4", "fps": 25, "tracker": "none",
                     "zone": [[0, 0], [10, 0], [10, 10]], "labels": {"site": "n"},
                     "outputs": {"mot": "b.txt"}},
                    {"name": "c", "uri": "rtsp://cam/1"}],
        "workers": [{"name": "w0", "cpus": 1, "capacity_fps": 40}]}


def test_a_good_yaml(tmp_path):
    config = parse_fleet(GOOD, tmp_path / "cams.yaml")
    a, b, c = config.streams
    assert a.fps == 12 and a.imgsz == 320 and a.outputs.json == tmp_path / "out" / "a.jsonl"
    assert b.uri == str(tmp_path / "clip.mp4") and b.fps == 25 and b.tracker is None
    assert b.outputs.mot == tmp_path / "b.txt" and b.outputs.json == tmp_path / "out/b.jsonl"
    assert b.zone == ((0, 0), (10, 0), (10, 10)) and b.labels == {"site": "n"}
    assert c.fps == DEFAULT_FPS and c.uri == "rtsp://cam/1"
    assert a.model_key == c.model_key
    assert config.workers[0].capacity_fps == 40


def _with(path: str, value) -> dict:
    data = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DROP:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


_DROP = object()


@pytest.mark.parametrize(("path", "value", "message"), [
    ("streams", [], "no stream listed"),
    ("streams.0.uri", _DROP, "no uri"),
    ("streams.0.fps", -3, "streams[0] (a).fps: expected a number above 0"),
    ("streams.0.tracker", "sort", "unknown tracker 'sort'; use one of botsort"),
    ("streams.0.camera", 1, "unknown key 'camera'"),
    ("streams.0.name", "b", "two streams are named 'b'"),
    ("streams.0.name", "a/b", "not a usable name"),
    ("streams.1.zone", [[0, 0]], "expected a polygon"),
    ("defaults.outputs", {"json": "same.jsonl"}, "is written by 'a' too; put {name} in"),
    ("defaults.outputs", _DROP, "(a).outputs: the stream writes nothing"),
    ("streams.1.outputs", {"video": "b.avi"}, "not a video file"),
    ("workers.0.cpus", 0, "workers[0].cpus: expected a number above 0"),
    ("workers", {"w": 1}, "workers: expected a list"),
    ("streams.0.conf", 2, "above 1"),
])
def test_yaml_mistakes_are_one_line_naming_the_field(tmp_path, path, value, message):
    with pytest.raises(UserInputError) as error:
        parse_fleet(_with(path, value), tmp_path / "cams.yaml")
    text = str(error.value)
    assert message in text and "\n" not in text and str(tmp_path / "cams.yaml") in text


def test_unreadable_or_broken_yaml(tmp_path):
    with pytest.raises(UserInputError, match="cannot read it"):
        load_fleet(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("streams:\n  - name: a\n   uri: [x\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="not valid YAML at line"):
        load_fleet(broken)


# ---------------------------------------------------------------------------- on Ray

#: Four different short scenes; small frames so the whole run takes seconds.
SCENES = {name: f"synthetic://?seed={seed}&size=320x192&fps=10&frames={frames}&objects=4"
                "&min_size=30"
          for name, seed, frames in (("a", 11, 12), ("b", 12, 9), ("c", 13, 15), ("d", 14, 10))}
MODEL = ["--imgsz", "320", "--backend", "onnxruntime", "--conf", "0.25",
         "--tracker", "bytetrack"]


def _rows(path: Path) -> list[dict]:
    """JSON Lines records without the stream number (a worker numbers its own streams)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        row.pop("stream")
    return rows


def _same_rows(fleet: list[dict], alone: list[dict]) -> None:
    assert [r["frame"] for r in fleet] == [r["frame"] for r in alone]
    for mine, single in zip(fleet, alone, strict=True):
        assert mine["time"] == single["time"]
        assert [(d["class_id"], d["track_id"]) for d in mine["detections"]] == \
            [(d["class_id"], d["track_id"]) for d in single["detections"]]
        # two streams share a worker's engine calls (batch 2 vs 1): boxes equal to float
        # tolerance, classes, identities and events exactly
        np.testing.assert_allclose([d["box"] for d in mine["detections"]],
                                   [d["box"] for d in single["detections"]], atol=0.05)
        assert mine["events"] == single["events"]


def test_four_streams_on_two_cpu_workers_match_single_process_runs(tmp_path):
    pytest.importorskip("ray")
    cameras = {
        "defaults": {"imgsz": 320, "backend": "onnxruntime", "tracker": "bytetrack",
                     "conf": 0.25,
                     "outputs": {"json": "fleet/{name}.jsonl", "mot": "fleet/{name}.txt"}},
        "streams": [{"name": name, "uri": uri, "labels": {"cam": name}}
                    for name, uri in SCENES.items()],
        "workers": [{"name": "w0", "cpus": 1, "capacity_fps": 20},
                    {"name": "w1", "cpus": 1, "capacity_fps": 20}],
    }
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump(cameras), encoding="utf-8")
    stats = tmp_path / "fleet.json"
    done = run_cli("fleet", "run", "--sources", str(path), "--address", "local", "--cpus", "2",
                   "--stats-json", str(stats), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(stats.read_text(encoding="utf-8"))

    # placement: two streams of 10 frames/s on each worker of 20
    assert {w["name"]: sorted(w["streams"]) for w in report["workers"]} == \
        {"w0": ["a", "c"], "w1": ["b", "d"]}
    assert report["shortage"] == {}
    for name, uri in SCENES.items():
        alone = tmp_path / f"alone_{name}.jsonl"
        single = run_cli("run", "--source", uri, *MODEL, "--save-json", str(alone),
                         "--save-mot", str(tmp_path / f"alone_{name}.txt"),
                         "--stats-json", str(tmp_path / f"alone_{name}.json"))
        assert single.returncode == 0, single.stderr[-3000:]
        _same_rows(_rows(tmp_path / "fleet" / f"{name}.jsonl"), _rows(alone))
        mot = (tmp_path / "fleet" / f"{name}.txt").read_text().splitlines()
        single_mot = (tmp_path / f"alone_{name}.txt").read_text().splitlines()
        assert [r.split(",")[:2] for r in mot] == [r.split(",")[:2] for r in single_mot]
        theirs = json.loads((tmp_path / f"alone_{name}.json").read_text())
        mine = next(s for s in report["streams"] if s["name"] == name)
        for key in ("frames_in", "frames_out", "frames_dropped", "frames_skipped"):
            assert mine[key] == theirs[key], key
        assert mine["labels"] == {"cam": name} and mine["error"] is None

    # statistics add up: streams → workers → fleet
    streams = report["streams"]
    assert [s["stream"] for s in streams] == [0, 1, 2, 3]
    assert [s["frames_out"] for s in streams] == [12, 9, 15, 10]
    for key in ("frames_in", "frames_out", "frames_dropped"):
        assert report[key] == sum(s[key] for s in streams)
    for worker in report["workers"]:
        mine = [s for s in streams if s["worker"] == worker["name"]]
        assert worker["frames_out"] == sum(s["frames_out"] for s in mine)
        assert worker["inference"]["frames"] == worker["frames_out"]
        assert worker["load_fps"] == sum(s["demand_fps"] for s in mine) <= 20
    assert "4 streams on 2 workers: 46 frames out" in done.stdout


def test_fleet_without_ray_says_how_to_install_it(tmp_path):
    """``stream`` imports without Ray, and ``detstream fleet run`` says what to install."""
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    hide = tmp_path / "noray"
    hide.mkdir()
    (hide / "ray.py").write_text("raise ImportError('hidden for the test')\n")
    done = subprocess.run([sys.executable, "-m", "detstream", "fleet", "run", "--sources",
                           str(path)], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(hide)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "detstream fleet run: error: Ray is not installed; install detstream[fleet] "
        "(pip install 'detstream[fleet]')"]
