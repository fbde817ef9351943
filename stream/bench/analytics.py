"""``detstream bench analytics``: counting lines and watched areas against the truth, and what
they cost a frame.

**Accuracy.** The synthetic world knows every object's true box on every frame, so it knows
the true crossings, entries, exits and dwell times: the true boxes, fed to the same rules,
give them. For each scene kind (static cameras: ``sparse``, ``crowd``, ``crossings``,
``occlusions``, ``stop-go``) a held-out scene is rendered, two lines (one across, one down)
and an area (the middle of the frame, loitering after :data:`DWELL_S`) are placed on it, and
``detstream run``'s pipeline runs it as a file with the chosen model and tracker. Per scene:

- count error of each line: ``|counted - true|`` per direction and class, summed, over the
  true count; and over all lines together (the issue's target: at most 3 %);
- event precision and recall: an event matches a true one of the same rule, kind and
  direction on the same object within :data:`MATCH_S` seconds; an event's object is the true
  object its track's box covered on that frame (:class:`TrackObjects`: a track that switched
  from one object to another is judged on the one it followed then); each true crossing
  missed is put down to its cause (:func:`missed_crossings`);
- dwell: the area's p50 dwell time against the truth's, and the median error of the matched
  exits' dwell times.

**Against the peer** (``--peer``): supervision's ``LineZone``, installed for the comparison
only, fed the same tracks with the same anchor (:func:`peer_comparison`).

**Cost.** :func:`rules_cost`: 10 lines and 10 areas fed 30 moving tracks for 3000 frames
(counts, events and the state the journal records), ms a frame (target: at most 0.3).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from detstream.engines.boxes import iou_matrix
from detstream.engines.data.synthetic import SceneConfig
from detstream.engines.spec import Detections
from detstream.stream.analytics import RuleEvent, Rules
from detstream.stream.analytics.geometry import anchor_points
from detstream.stream.analytics.specs import area_specs, line_specs
from detstream.stream.bench.common import Log, quiet
from detstream.stream.bench.scene_kinds import SCENE_KINDS
from detstream.stream.run_config import RunConfig

#: Scene kinds of the accuracy benchmark (all static cameras: rules are in image pixels).
ANALYTICS_KINDS: dict[str, dict] = {
    "sparse": {"objects": 4},
    "crowd": SCENE_KINDS["crowd"],
    "crossings": SCENE_KINDS["crossings"],
    "occlusions": SCENE_KINDS["occlusions"],
    "stop-go": SCENE_KINDS["stop-go"],
}
#: Loitering threshold of the benchmark's area, seconds.
DWELL_S = 2.0
#: An event matches a true one at most this many seconds apart.
MATCH_S = 1.0
#: A track's boxes belong to a true object when they overlap it at least this much.
MATCH_IOU = 0.5
#: Targets (issue 37).
TARGET_COUNT_ERROR, TARGET_EVENTS, TARGET_DWELL_S, TARGET_COST_MS = 0.03, 0.95, 0.5, 0.3


def scene_rules(width: int, height: int) -> tuple[list[str], list[str]]:
    """The benchmark's rules on a ``width`` x ``height`` frame: a line across at 45 % of the
    height, a line down at 55 % of the width, an area over the middle of the frame."""
    w, h = width, height
    lines = [f"across:{0.05 * w:g},{0.45 * h:g},{0.95 * w:g},{0.45 * h:g}",
             f"down:{0.55 * w:g},{0.05 * h:g},{0.55 * w:g},{0.95 * h:g}"]
    areas = [f"middle:{0.3 * w:g},{0.3 * h:g} {0.7 * w:g},{0.3 * h:g} {0.7 * w:g},{0.7 * h:g} "
             f"{0.3 * w:g},{0.7 * h:g}"]
    return lines, areas


def scene_uri(config: SceneConfig) -> str:
    """The ``synthetic://`` URI of ``config`` (a file: every frame, with its truth)."""
    keys = ("seed", "fps", "frames", "objects", "min_size", "max_size_frac", "crossings",
            "occluder_width", "stops")
    params = "&".join(f"{k}={getattr(config, k):g}" if isinstance(getattr(config, k), float)
                      else f"{k}={getattr(config, k)}" for k in keys)
    return f"synthetic://?size={config.width}x{config.height}&camera_motion=0&{params}"


class TrackObjects:
    """Which true object each of our tracks covered, frame by frame: a track's box belongs to
    the true box it overlaps most, at IoU :data:`MATCH_IOU` or more."""

    def __init__(self, ours: list[Detections], truth: list[Detections]) -> None:
        self.object_at: dict[tuple[int, int], int] = {}  # (track, frame) -> object
        self.track_at: dict[tuple[int, int], int] = {}  # (object, frame) -> track
        for frame, (mine, true) in enumerate(zip(ours, truth, strict=True)):
            if not len(mine) or not len(true):
                continue
            overlap = iou_matrix(mine.boxes, true.boxes)
            best = overlap.argmax(axis=1)
            for k, track_id in enumerate(mine.track_ids.tolist()):
                if track_id >= 0 and overlap[k, best[k]] >= MATCH_IOU:
                    obj = int(true.track_ids[best[k]])
                    self.object_at[(track_id, frame)] = obj
                    self.track_at[(obj, frame)] = track_id

    def object_of(self, event: RuleEvent, window: int) -> int | None:
        """The object ``event``'s track covered on the event's frame, else on the nearest
        frame at most ``window`` frames away (a coasting track covers nothing)."""
        for gap in range(window + 1):
            for frame in (event.frame - gap, event.frame + gap):
                obj = self.object_at.get((event.track_id, frame))
                if obj is not None:
                    return obj
        return None

    def tracks_of(self, obj: int, frames: range) -> set[int]:
        """Our tracks that covered ``obj`` on any of ``frames``."""
        return {t for f in frames if (t := self.track_at.get((obj, f))) is not None}


def _key(event: RuleEvent) -> tuple:
    return (event.rule, event.kind, event.direction)


def match_events(ours: list[RuleEvent], true: list[RuleEvent],
                 object_of: Callable[[RuleEvent], int | None]
                 ) -> tuple[int, list[tuple[RuleEvent, RuleEvent]]]:
    """Pairs of (ours, true) events of the same rule, kind and direction at most
    :data:`MATCH_S` apart whose object is the same (``object_of`` one of our events: the
    true object its track covered then), each used once, closest in time first: how many
    matched, and the pairs."""
    candidates = []
    for i, mine in enumerate(ours):
        obj = object_of(mine)
        for j, real in enumerate(true):
            if obj == real.track_id and _key(mine) == _key(real):
                gap = abs(mine.time - real.time)
                if gap <= MATCH_S:
                    candidates.append((gap, i, j))
    used_ours, used_true, pairs = set(), set(), []
    for _, i, j in sorted(candidates):
        if i not in used_ours and j not in used_true:
            used_ours.add(i)
            used_true.add(j)
            pairs.append((ours[i], true[j]))
    return len(pairs), pairs


#: Why a true crossing had no event of ours (see :func:`missed_crossings`).
MISS_CAUSES = ("not tracked", "tracked on one side only", "identity changed at the line",
               "same track, not counted")


def missed_crossings(missed: list[RuleEvent], objects: TrackObjects, window: int
                     ) -> dict[str, int]:
    """Why each true crossing in ``missed`` got no event: its object was covered by none of
    our tracks within ``window`` frames of it; only before or only after it; by different
    tracks before and after (the identity changed); or by the same track, which did not
    count it (it had crossed that way before, once per track and direction, or its path
    passed beside the segment)."""
    causes = dict.fromkeys(MISS_CAUSES, 0)
    for event in missed:
        before = objects.tracks_of(event.track_id, range(event.frame - window, event.frame))
        after = objects.tracks_of(event.track_id, range(event.frame, event.frame + window))
        if not before and not after:
            causes["not tracked"] += 1
        elif not before or not after:
            causes["tracked on one side only"] += 1
        elif not before & after:
            causes["identity changed at the line"] += 1
        else:
            causes["same track, not counted"] += 1
    return causes


def count_error(counted: dict, true: dict) -> tuple[int, int]:
    """``(sum of |counted - true| per direction and class, true total)`` of one line."""
    error = total = 0
    for direction in ("in", "out"):
        classes = set(counted[direction]) | set(true[direction])
        error += sum(abs(counted[direction].get(c, 0) - true[direction].get(c, 0))
                     for c in classes)
        total += true[f"{direction}_total"]
    return error, total


def total_error(counted: tuple[int, int], true: tuple[int, int]) -> int:
    """``|in - true in| + |out - true out|`` over every class together."""
    return abs(counted[0] - true[0]) + abs(counted[1] - true[1])


def _as_supervision(dets: Detections):
    """The tracked boxes of ``dets`` as supervision's ``Detections`` (imported by the
    caller: supervision is installed for the comparison only)."""
    import supervision as sv

    tracked = dets.track_ids >= 0
    return sv.Detections(xyxy=dets.boxes[tracked].astype(np.float32),
                         confidence=dets.scores[tracked].astype(np.float32),
                         class_id=dets.class_ids[tracked].astype(int),
                         tracker_id=dets.track_ids[tracked].astype(int))


def peer_line_counts(frames: list[Detections], lines: list[str]) -> dict[str, tuple[int, int]]:
    """supervision's ``LineZone`` (installed for this comparison only) fed the same tracks,
    triggered by the same anchor (the box's bottom centre): ``(in, out)`` per line."""
    import supervision as sv

    zones = {}
    for spec in line_specs(lines):
        zones[spec.name] = sv.LineZone(start=sv.Point(*spec.start), end=sv.Point(*spec.end),
                                       triggering_anchors=(sv.Position.BOTTOM_CENTER,))
    for dets in frames:
        frame = _as_supervision(dets)
        for zone in zones.values():
            zone.trigger(frame)
    return {name: (zone.in_count, zone.out_count) for name, zone in zones.items()}


def occupancy_error(counts: list[int], true: list[int]) -> dict:
    """Per-frame occupancy against the truth: mean absolute error and the share of frames
    exactly right."""
    diff = np.abs(np.asarray(counts) - np.asarray(true))
    return {"mean_abs_error": round(float(diff.mean()), 4) if len(diff) else None,
            "exact": round(float((diff == 0).mean()), 4) if len(diff) else None}


def our_occupancy(frames: list[Detections], ended: list[list[int]], areas: list[str],
                  fps: float) -> dict[str, list[int]]:
    """Each area's occupancy per frame as the run's rules saw it: the same tracks, ended
    tracks and areas fed again to fresh rules (the pipeline's own are a frame or more ahead
    by the time a frame is handed out)."""
    rules = Rules([], list(area_specs(areas)))
    counts: dict[str, list[int]] = {area.spec.name: [] for area in rules.areas}
    for k, (dets, gone) in enumerate(zip(frames, ended, strict=True)):
        rules.update(dets, k, k / fps, gone)
        for name, shown in rules.tallies().items():
            counts[name].append(shown[0])
    return counts


def true_occupancy(truth: list[Detections], areas: list[str]) -> dict[str, list[int]]:
    """Each area's true objects per frame: those whose anchor is inside, counting the ones
    at least :data:`~detstream.stream.sinks.truth.MIN_VISIBILITY` visible (as the detection
    scores do: a crowd hides a third of its people almost wholly)."""
    from detstream.stream.sinks.truth import MIN_VISIBILITY
    from detstream.stream.zones import Zone

    result = {}
    for spec in area_specs(areas):
        zone = Zone(spec.points)
        result[spec.name] = [
            int(zone.contains(anchor_points(seen.boxes, spec.anchor)).sum()) if len(seen) else 0
            for seen in (boxes[boxes.data["visibility"] >= MIN_VISIBILITY] for boxes in truth)]
    return result


def peer_occupancy(frames: list[Detections], areas: list[str]) -> dict[str, list[int]]:
    """supervision's ``PolygonZone`` (installed for this comparison only) fed the same tracks
    with the same anchor: each area's count per frame."""
    import supervision as sv

    zones = {spec.name: sv.PolygonZone(polygon=np.asarray(spec.points, np.int32),
                                       triggering_anchors=(sv.Position.BOTTOM_CENTER,))
             for spec in area_specs(areas)}
    counts: dict[str, list[int]] = {name: [] for name in zones}
    for dets in frames:
        frame = _as_supervision(dets)
        for name, zone in zones.items():
            zone.trigger(frame)
            counts[name].append(int(zone.current_count))
    return counts


def peer_comparison(frames: list[Detections], lines: list[str], ours: dict, true: dict
                    ) -> dict:
    """Each line's error, ours against supervision's on the same tracks, counting both
    directions over every class together. supervision names the directions its own way: its
    counts are compared both ways round and the smaller error kept (in its favour)."""
    peer = peer_line_counts(frames, lines)
    result = {}
    for name, (a, b) in peer.items():
        real = (true[name]["in_total"], true[name]["out_total"])
        mine = (ours[name]["in_total"], ours[name]["out_total"])
        theirs = min(total_error((a, b), real), total_error((b, a), real))
        result[name] = {"ours": total_error(mine, real), "supervision": theirs,
                        "supervision_counts": [a, b], "true": list(real)}
    return result


def bench_scene(config: SceneConfig, run_options: dict, log: Log = quiet,
                peer: bool = False) -> dict:
    """One scene through the pipeline with the benchmark's rules, against its truth."""
    from detstream.stream.session import build

    lines, areas = scene_rules(config.width, config.height)
    ours: list[Detections] = []
    truth: list[Detections] = []
    events: list[RuleEvent] = []

    ended: list[list[int]] = []

    def keep(packet) -> None:
        ours.append(packet.detections)
        truth.append(packet.truth)
        events.extend(e for e in packet.events if isinstance(e, RuleEvent))
        ended.append([e.track_id for e in packet.events if getattr(e, "kind", "") == "ended"])

    run = RunConfig(**{**run_options, "source": scene_uri(config), "live": False,
                       "lines": lines, "areas": areas, "dwell": DWELL_S})
    session = build(run, on_packet=keep)
    report = session.pipeline.run()
    counted = report["analytics"]

    true_rules = Rules(line_specs(lines), [replace(a, dwell=DWELL_S) for a in area_specs(areas)])
    true_events: list[RuleEvent] = []
    for k, boxes in enumerate(truth):
        true_events += true_rules.update(boxes, k, k / config.fps)
    expected = true_rules.report()

    per_line, error, total = {}, 0, 0
    for name, mine in counted["lines"].items():
        e, t = count_error(mine, expected["lines"][name])
        per_line[name] = {"counted": [mine["in_total"], mine["out_total"]],
                          "true": [expected["lines"][name]["in_total"],
                                   expected["lines"][name]["out_total"]],
                          "error": round(e / t, 4) if t else float(e)}
        error, total = error + e, total + t
    objects = TrackObjects(ours, truth)
    window = round(MATCH_S * config.fps)
    matched, pairs = match_events(events, true_events,
                                  lambda e: objects.object_of(e, window))
    found = {id(t) for _, t in pairs}
    missed = missed_crossings([t for t in true_events if t.kind == "line_crossed"
                               and id(t) not in found], objects, window)
    exits = [abs(m.dwell - t.dwell) for m, t in pairs if m.kind == "zone_left"]
    area, true_area = counted["areas"]["middle"], expected["areas"]["middle"]
    dwell_p50 = (None if area["dwell_p50_s"] is None or true_area["dwell_p50_s"] is None
                 else round(abs(area["dwell_p50_s"] - true_area["dwell_p50_s"]), 3))
    result = {
        "frames": len(ours), "lines": per_line,
        "count_error": round(error / total, 4) if total else None, "true_crossings": total,
        "events": len(events), "true_events": len(true_events), "matched": matched,
        "precision": round(matched / len(events), 4) if events else None,
        "recall": round(matched / len(true_events), 4) if true_events else None,
        "missed_crossings": missed,
        "events_by_kind": dict(Counter(e.kind for e in events)),
        "true_events_by_kind": dict(Counter(e.kind for e in true_events)),
        "area": {"entries": area["entries_total"], "true_entries": true_area["entries_total"],
                 "dwell_p50_s": area["dwell_p50_s"], "true_dwell_p50_s": true_area["dwell_p50_s"],
                 "dwell_p50_error_s": dwell_p50,
                 "exit_dwell_error_p50_s": round(float(np.median(exits)), 3) if exits else None},
        "tracking": {k: report.get("truth", {}).get(k) for k in ("HOTA", "IDF1")},
    }
    occupancy = our_occupancy(ours, ended, areas, config.fps)
    real_occupancy = true_occupancy(truth, areas)
    result["area"]["occupancy"] = occupancy_error(occupancy["middle"], real_occupancy["middle"])
    if peer:
        result["peer"] = peer_comparison(ours, lines, counted["lines"], expected["lines"])
        theirs = peer_occupancy(ours, areas)
        result["peer_occupancy"] = {
            name: {"ours": occupancy_error(occupancy[name], real_occupancy[name]),
                   "supervision": occupancy_error(theirs[name], real_occupancy[name])}
            for name in theirs}
    log(f"{config.seed}: count error {result['count_error']}, precision {result['precision']}, "
        f"recall {result['recall']}, dwell p50 error {dwell_p50}")
    return result


def rules_cost(frames: int = 3000, tracks: int = 30, rules: int = 10, seed: int = 0) -> dict:
    """ms a frame of ``rules`` lines and ``rules`` areas (640x480) fed ``tracks`` tracks
    moving at random (counts, events and the journal's state every frame)."""
    rng = np.random.default_rng(seed)
    lines = line_specs([f"l{i}:{50 * i},0,{50 * i + 30},480" for i in range(rules)])
    areas = area_specs([f"a{i}:{60 * i},{10 * i} {60 * i + 120},{10 * i} "
                        f"{60 * i + 120},{10 * i + 200} {60 * i},{10 * i + 200}"
                        for i in range(rules)])
    watched = Rules(lines, areas)
    position = rng.uniform(0, 600, (tracks, 2))
    velocity = rng.uniform(-3, 3, (tracks, 2))
    ids = np.arange(1, tracks + 1)
    times = []
    for frame in range(frames):
        position = (position + velocity) % 620
        boxes = np.concatenate([position - [20, 80], position + [20, 0]], axis=1)
        dets = Detections(boxes=boxes.astype(np.float32), scores=np.ones(tracks, np.float32),
                          class_ids=np.zeros(tracks, np.int64), class_names=("person",),
                          track_ids=ids)
        start = time.perf_counter()
        watched.update(dets, frame, frame / 30.0)
        watched.state()
        times.append((time.perf_counter() - start) * 1000.0)
    steady = np.asarray(times[100:])
    return {"lines": rules, "areas": rules, "tracks": tracks, "frames": frames,
            "ms_mean": round(float(steady.mean()), 4),
            "ms_p50": round(float(np.median(steady)), 4),
            "ms_p95": round(float(np.percentile(steady, 95)), 4),
            "events": dict(watched.report()["events"])}


def bench_analytics(run_options: dict, kinds: tuple[str, ...], frames: int = 900,
                    size: tuple[int, int] = (640, 480), first_seed: int = 3700,
                    log: Log = quiet, peer: bool = False) -> dict:
    """Every scene kind of ``kinds`` (:data:`ANALYTICS_KINDS`) through :func:`bench_scene`,
    the totals against the targets, and :func:`rules_cost`."""
    w, h = size
    base = {"width": w, "height": h, "fps": 30.0, "frames": frames, "objects": 10,
            "min_size": 48 * h / 720, "max_size_frac": 0.35, "camera_motion": False}
    scenes = {}
    for i, kind in enumerate(kinds):
        config = SceneConfig(**{**base, **ANALYTICS_KINDS[kind]}, seed=first_seed + i)
        log(f"{kind}: {frames} frames of {w}x{h}, seed {config.seed}")
        scenes[kind] = bench_scene(config, run_options, log, peer)
    log("rules alone: 10 lines and 10 areas, 30 tracks")
    cost = rules_cost()
    errors = [s["count_error"] for s in scenes.values() if s["count_error"] is not None]
    crossings = sum(s["true_crossings"] for s in scenes.values())
    miscounted = sum(s["count_error"] * s["true_crossings"] for s in scenes.values()
                     if s["count_error"] is not None)
    matched = sum(s["matched"] for s in scenes.values())
    ours = sum(s["events"] for s in scenes.values())
    true = sum(s["true_events"] for s in scenes.values())
    dwell = [s["area"]["dwell_p50_error_s"] for s in scenes.values()
             if s["area"]["dwell_p50_error_s"] is not None]
    total = {"count_error": round(miscounted / crossings, 4) if crossings else None,
             "precision": round(matched / ours, 4) if ours else None,
             "recall": round(matched / true, 4) if true else None,
             "dwell_p50_error_s": round(max(dwell), 3) if dwell else None,
             "worst_scene_count_error": max(errors) if errors else None}
    targets = {
        "count error, all lines": (total["count_error"], f"<= {TARGET_COUNT_ERROR}",
                                   total["count_error"] is not None
                                   and total["count_error"] <= TARGET_COUNT_ERROR),
        "event precision": (total["precision"], f">= {TARGET_EVENTS}",
                            (total["precision"] or 0) >= TARGET_EVENTS),
        "event recall": (total["recall"], f">= {TARGET_EVENTS}",
                         (total["recall"] or 0) >= TARGET_EVENTS),
        "dwell p50 error s (worst scene)": (total["dwell_p50_error_s"], f"<= {TARGET_DWELL_S}",
                                            total["dwell_p50_error_s"] is not None
                                            and total["dwell_p50_error_s"] <= TARGET_DWELL_S),
        "rules ms a frame (p50)": (cost["ms_p50"], f"<= {TARGET_COST_MS}",
                                   cost["ms_p50"] <= TARGET_COST_MS),
    }
    return {"size": [w, h], "frames": frames, "dwell_s": DWELL_S, "match_s": MATCH_S,
            "model": run_options.get("model", "default"),
            "tracker": run_options.get("tracker", "botsort"), "scenes": scenes,
            "total": total, "cost": cost,
            "targets": {k: {"measured": v, "wanted": w_, "met": m}
                        for k, (v, w_, m) in targets.items()}}


def print_analytics(result: dict) -> None:
    """The table ``detstream bench analytics`` prints."""
    w, h = result["size"]
    print(f"{len(result['scenes'])} static scenes of {result['frames']} frames at {w}x{h}, "
          f"model {result['model']}, tracker {result['tracker']}; lines 'across' and 'down', "
          f"area 'middle' (dwell {result['dwell_s']:g} s)")
    print(f"{'scene':<12}{'crossings':>10}{'count err':>10}{'events':>8}{'true':>6}"
          f"{'precision':>10}{'recall':>8}{'dwell p50 err s':>16}")
    for kind, s in result["scenes"].items():
        err = "-" if s["count_error"] is None else f"{100 * s['count_error']:.1f}%"
        dwell = s["area"]["dwell_p50_error_s"]
        print(f"{kind:<12}{s['true_crossings']:>10}{err:>10}{s['events']:>8}{s['true_events']:>6}"
              f"{s['precision'] or 0:>10.3f}{s['recall'] or 0:>8.3f}"
              f"{'-' if dwell is None else f'{dwell:.2f}':>16}")
    print("true crossings missed, by cause: " + "; ".join(
        f"{cause} {sum(s['missed_crossings'][cause] for s in result['scenes'].values())}"
        for cause in MISS_CAUSES))
    print("area 'middle' occupancy per frame, mean abs error (share exact): " + "  ".join(
        f"{kind} {s['area']['occupancy']['mean_abs_error']} ({s['area']['occupancy']['exact']})"
        for kind, s in result["scenes"].items()))
    if any("peer" in s for s in result["scenes"].values()):
        print("line count errors (both directions, every class), ours against supervision's "
              "LineZone on the same tracks:")
        for kind, s in result["scenes"].items():
            print(f"  {kind:<12}" + "  ".join(
                f"{name} {v['ours']} vs {v['supervision']}" for name, v in s["peer"].items()))
        print("area occupancy per frame, mean abs error, ours against supervision's "
              "PolygonZone on the same tracks:")
        for kind, s in result["scenes"].items():
            print(f"  {kind:<12}" + "  ".join(
                f"{name} {v['ours']['mean_abs_error']} vs {v['supervision']['mean_abs_error']}"
                for name, v in s["peer_occupancy"].items()))
    c = result["cost"]
    print(f"rules alone: {c['lines']} lines, {c['areas']} areas, {c['tracks']} tracks: "
          f"{c['ms_p50']:.3f} ms a frame (p50), {c['ms_p95']:.3f} (p95)")
    print(f"{'target':<36}{'measured':>10}  {'wanted':<10}")
    for name, t in result["targets"].items():
        print(f"{name:<36}{t['measured'] if t['measured'] is not None else '-':>10}  "
              f"{t['wanted']:<10}{'met' if t['met'] else 'not met'}")
