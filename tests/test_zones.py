"""Zones: which anchors lie inside a polygon (convex or not), detections kept by their bottom
centre, and a run with ``--zone`` writes only the objects standing in it, with the outline
drawn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections
from detstream.stream.fleet.config import parse_fleet
from detstream.stream.zones import ZONE_COLOUR, Zone, parse_zone
from tests.conftest import run_cli, run_main

# An L: the square 0..100 without its top-right quarter (50..100 x 0..50).
L_SHAPE = [(0, 0), (50, 0), (50, 50), (100, 50), (100, 100), (0, 100)]


def test_points_inside_a_polygon_that_is_not_convex():
    zone = Zone(L_SHAPE)
    points = np.array([[25, 25], [75, 25], [75, 75], [25, 75], [150, 50], [-1, 50],
                       [50, 120], [99, 99]])
    assert zone.contains(points).tolist() == [True, False, True, True, False, False, False,
                                              True]


def test_detections_are_kept_by_where_they_stand():
    zone = Zone([(0, 50), (200, 50), (200, 100), (0, 100)])  # a strip of floor
    boxes = np.array([[10, 0, 30, 60],     # head above the strip, feet in it: kept
                      [10, 60, 30, 90],    # wholly inside: kept
                      [10, 0, 30, 40],     # above it: dropped
                      [190, 70, 250, 95]])  # feet's centre at x=220, outside: dropped
    dets = Detections(boxes=boxes, scores=np.full(4, 0.9), class_ids=np.zeros(4, int),
                      class_names=("person",))
    kept = zone.keep(dets)
    np.testing.assert_array_equal(kept.boxes, boxes[:2])
    assert len(zone.keep(Detections.empty(("person",)))) == 0


@pytest.mark.parametrize(("text", "message"), [
    ("0,0 10,0", "three or more"),
    ("0,0 10,0 20,0", "no area"),
    ("0,0 10 20,20", "'10' is not an x,y pair"),
])
def test_bad_zones_say_what_to_write(text, message):
    with pytest.raises(UserInputError, match=message):
        parse_zone(text)


def test_parse_zone_reads_pairs():
    assert parse_zone("0,0 640,0 640,360;0,360") == ((0, 0), (640, 0), (640, 360), (0, 360))


def test_a_yaml_zone_without_area_is_one_line(tmp_path):
    data = {"defaults": {"outputs": {"json": "{name}.jsonl"}},
            "streams": [{"name": "a", "uri": "synthetic://?seed=1", "zone": [[0, 0], [5, 5],
                                                                            [10, 10]]}]}
    with pytest.raises(UserInputError, match=r"streams\[0\] \(a\)\.zone: the polygon has no"):
        parse_fleet(data, tmp_path / "cams.yaml")


def test_a_run_with_a_zone_writes_only_what_stands_in_it(tmp_path):
    source = "synthetic://?seed=5&size=320x192&frames=30&objects=8&min_size=30"
    common = ["--source", source, "--imgsz", "320", "--backend", "onnxruntime",
              "--tracker", "bytetrack"]
    zone = "0,0 160,0 160,192 0,192"  # the left half
    done = run_main("run", *common, "--zone", zone, "--save-json", str(tmp_path / "zone.jsonl"),
                   "--output", str(tmp_path / "zone.mp4"))
    assert done.returncode == 0, done.stderr[-2000:]
    whole = run_main("run", *common, "--save-json", str(tmp_path / "all.jsonl"))
    assert whole.returncode == 0, whole.stderr[-2000:]

    def anchors(name):
        rows = [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
        return [((d["box"][0] + d["box"][2]) / 2, d["box"][3])
                for row in rows for d in row["detections"]]

    inside, everywhere = anchors("zone.jsonl"), anchors("all.jsonl")
    assert inside and all(x < 160 for x, _ in inside)
    assert any(x >= 160 for x, _ in everywhere) and len(inside) < len(everywhere)
    import av  # the outline is in the video

    with av.open(str(tmp_path / "zone.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    band = frame[20:170, 156:165].astype(int)  # around the zone's right edge, x = 160
    outline = np.abs(band - np.array(ZONE_COLOUR)).max(axis=2) < 60
    assert outline.any(axis=1).mean() > 0.8  # the line runs down the frame (objects aside)
    assert not (np.abs(frame[20:170, 240:249].astype(int) - np.array(ZONE_COLOUR))
                .max(axis=2) < 60).any(axis=1).mean() > 0.8


def test_a_bad_zone_on_the_command_line_is_one_line():
    done = run_cli("run", "--zone", "0,0 10,0")
    assert done.returncode == 2
    assert "--zone" in done.stderr and "three or more" in done.stderr
    assert "Traceback" not in done.stderr
