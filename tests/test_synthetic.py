"""The synthetic world: determinism, exact ground truth, and the difficulty it promises."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from detstream.engines.data.mot import MotWriter
from detstream.engines.data.synthetic import (
    CLASS_NAMES,
    Renderer,
    SceneConfig,
    SyntheticScene,
    World,
    parse_synthetic_uri,
)
from detstream.engines.errors import UserInputError


def truth_bytes(config: SceneConfig) -> bytes:
    buffer = io.StringIO()
    for frame, (_, truth) in enumerate(SyntheticScene(config), start=1):
        for row in range(len(truth)):
            buffer.write(f"{frame} {truth.track_ids[row]} {truth.class_ids[row]} "
                         f"{truth.boxes[row].tobytes().hex()} "
                         f"{truth.data['visibility'][row].tobytes().hex()}\n")
    return buffer.getvalue().encode()


def test_same_seed_same_truth_different_seed_different():
    config = SceneConfig(width=480, height=270, frames=60, seed=11, camera_motion=True)
    first = truth_bytes(config)
    assert first == truth_bytes(config)
    assert first != truth_bytes(config.with_changes(seed=12))
    assert len(first) > 0


def test_same_seed_same_pixels():
    config = SceneConfig(width=320, height=180, frames=5, seed=4)
    a = [frame for frame, _ in SyntheticScene(config)]
    b = [frame for frame, _ in SyntheticScene(config)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_frame_shape_and_truth_layout():
    config = SceneConfig(width=640, height=360, frames=3, seed=2)
    for frame, truth in SyntheticScene(config):
        assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8
        assert truth.class_names == CLASS_NAMES
        assert np.all(truth.boxes[:, :2] >= 0)
        assert np.all(truth.boxes[:, 2] <= 640) and np.all(truth.boxes[:, 3] <= 360)
        assert np.all(truth.boxes[:, 2:] > truth.boxes[:, :2])
        assert np.all((truth.data["visibility"] >= 0) & (truth.data["visibility"] <= 1))
        assert list(truth.track_ids) == sorted(truth.track_ids)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("seed, camera", [(1, False), (5, True)])
def test_unoccluded_object_pixels_match_its_box(seed, camera):
    """Render each fully visible object in and out: the pixels that change are its box."""
    config = SceneConfig(width=640, height=360, frames=40, seed=seed, camera_motion=camera,
                         motion_blur=False)
    world = World(config)
    renderer = Renderer(world)
    checked = 0
    for index in range(config.frames):
        state = world.step()
        if index % 10:
            continue
        full = renderer.render(state, instances=True)
        vis = full.truth.data["visibility"]
        for row in np.flatnonzero(vis == 1.0):
            tid = int(full.truth.track_ids[row])
            box = tuple(int(v) for v in full.truth.boxes[row])
            without = renderer.render(state, exclude={tid})
            changed = np.any(full.image != without.image, axis=2)
            assert mask_box(changed) == box, f"track {tid} at frame {index}"
            assert mask_box(full.instances == tid) == box
            checked += 1
    assert checked >= 10


def test_visibility_counts_hidden_pixels():
    config = SceneConfig(width=640, height=360, frames=150, seed=3, objects=14)
    world = World(config)
    renderer = Renderer(world)
    partly = 0
    for _ in range(config.frames):
        rendered = renderer.render(world.step(), instances=True)
        truth = rendered.truth
        for row in range(len(truth)):
            tid = int(truth.track_ids[row])
            seen = int(np.count_nonzero(rendered.instances == tid))
            v = float(truth.data["visibility"][row])
            assert (seen == 0) == (v == 0.0)
            partly += 0.0 < v < 1.0
    assert partly > 50


def scene_statistics(config: SceneConfig) -> dict[str, object]:
    tracks: dict[int, list[tuple[int, float, float, float]]] = {}
    classes = set()
    sizes = []
    cams = []
    for index, (state, rendered) in enumerate(SyntheticScene(config).rendered()):
        cams.append((state.cam_x, state.cam_y))
        truth = rendered.truth
        for row in range(len(truth)):
            x0, y0, x1, y1 = truth.boxes[row]
            tid = int(truth.track_ids[row])
            vis = float(truth.data["visibility"][row])
            tracks.setdefault(tid, []).append((index, vis, max(x1 - x0, y1 - y0), x0))
            classes.add(int(truth.class_ids[row]))
            if vis == 1.0 and 0 < x0 and x1 < config.width and 0 < y0 and y1 < config.height:
                sizes.append(max(x1 - x0, y1 - y0))
    return {"tracks": tracks, "classes": classes, "sizes": sizes, "cams": np.array(cams)}


@pytest.fixture(scope="module")
def busy_scene() -> dict[str, object]:
    config = SceneConfig(width=960, height=540, frames=450, seed=21, objects=10,
                         camera_motion=True)
    return {"config": config, **scene_statistics(config)}


def test_world_has_all_classes_and_size_range(busy_scene):
    config = busy_scene["config"]
    assert busy_scene["classes"] == set(range(len(CLASS_NAMES)))
    sizes = np.array(busy_scene["sizes"])
    assert sizes.min() <= 16  # about 12 px at the small end
    assert sizes.max() >= 0.8 * 0.25 * config.height  # about a quarter of the height


def test_objects_enter_leave_and_change_scale(busy_scene):
    tracks = busy_scene["tracks"]
    frames = busy_scene["config"].frames
    born_late = [t for t, rows in tracks.items() if rows[0][0] > 30]
    left_early = [t for t, rows in tracks.items() if rows[-1][0] < frames - 30]
    assert len(born_late) >= 5 and len(left_early) >= 5
    growth = [max(r[2] for r in rows) / min(r[2] for r in rows)
              for rows in tracks.values() if len(rows) > 60]
    assert max(growth) > 1.5  # approaching or receding


def test_short_full_occlusions_happen():
    """Some object is fully hidden in view for a short spell, then seen again."""
    spells = []
    for seed in range(4):
        config = SceneConfig(width=640, height=360, frames=300, seed=seed, objects=10)
        for rows in scene_statistics(config)["tracks"].values():
            hidden = [vis == 0.0 for _, vis, _, _ in rows]
            run = 0
            for i, h in enumerate(hidden):
                if h:
                    run += 1
                elif run and i - run > 0:
                    spells.append(run)
                    run = 0
                else:
                    run = 0
    assert spells, "no object was ever fully hidden and then seen again"
    assert min(spells) < 30


def test_camera_pans_only_when_asked(busy_scene):
    cams = busy_scene["cams"]
    assert np.ptp(cams[:, 0]) > 20 and np.ptp(cams[:, 1]) > 5
    still = SyntheticScene(SceneConfig(width=320, height=180, frames=30, seed=1))
    assert {(s.cam_x, s.cam_y) for s in still.states()} == {(0, 0)}


def test_motion_is_smooth(busy_scene):
    """Centres move in small steps: no teleports between consecutive frames of a track."""
    config = busy_scene["config"]
    for state_a, state_b in zip(SyntheticScene(config.with_changes(frames=60)).states(),
                                list(SyntheticScene(config.with_changes(frames=61)).states())[1:],
                                strict=True):
        b = {body.uid: body for body in state_b.bodies}
        for body in state_a.bodies:
            if body.uid in b:
                step = math.hypot(b[body.uid].cx - body.cx, b[body.uid].cy - body.cy)
                assert step < 0.1 * config.width


def test_endless_scene_and_uri():
    config, live = parse_synthetic_uri("synthetic://?seed=3&size=320x240&fps=25&live=1")
    assert live and config.frames is None and (config.width, config.height) == (320, 240)
    assert config.fps == 25 and config.seed == 3
    frames = SyntheticScene(config)
    iterator = iter(frames)
    for _ in range(5):
        image, _ = next(iterator)
    assert image.shape == (240, 320, 3)
    config, live = parse_synthetic_uri("synthetic://?frames=10&camera_motion=1")
    assert not live and config.frames == 10 and config.camera_motion


@pytest.mark.parametrize(
    "uri, message",
    [
        ("synthetic://?size=12", "WIDTHxHEIGHT"),
        ("synthetic://?colour=red", "no parameter 'colour'"),
        ("synthetic://?seed=abc", "is not a number"),
        ("synthetic://?size=32x32", "too small"),
    ],
)
def test_bad_uri_says_what_is_wrong(uri, message):
    with pytest.raises(UserInputError, match=message):
        parse_synthetic_uri(uri)


def test_ground_truth_writes_as_mot(tmp_path):
    config = SceneConfig(width=320, height=180, frames=10, seed=9)
    with MotWriter(tmp_path / "gt.txt", ground_truth=True) as writer:
        for frame, (_, truth) in enumerate(SyntheticScene(config), start=1):
            writer.write(frame, truth)
    rows = (tmp_path / "gt.txt").read_text().splitlines()
    assert rows and all(len(r.split(",")) == 9 for r in rows)


def test_objects_stop_and_go():
    config = SceneConfig(width=640, height=360, frames=300, seed=2, objects=10)
    speeds: dict[int, list[float]] = {}
    for state in SyntheticScene(config).states():
        for body in state.bodies:
            if body.class_id >= 0:
                speeds.setdefault(body.uid, []).append(math.hypot(body.vx, body.vy))
    stop_and_go = 0
    for series in speeds.values():
        s = np.array(series)
        if len(s) < 60:
            continue
        slow = s < 0.15 * np.median(s)
        # A stop lasting at least 0.3 s, with movement before and after it.
        runs = np.flatnonzero(np.diff(np.concatenate([[0], slow.astype(int), [0]])))
        for start, end in zip(runs[::2], runs[1::2], strict=True):
            if end - start >= 9 and s[:start].max(initial=0) > 0.5 * np.median(s) \
                    and s[end:].max(initial=0) > 0.5 * np.median(s):
                stop_and_go += 1
                break
    assert stop_and_go >= 2


def test_lighting_noise_and_blur_change_pixels():
    base = SceneConfig(width=320, height=180, frames=240, seed=6, objects=10)
    means = [frame.mean() for frame, _ in SyntheticScene(base)]
    assert np.ptp(means) > 5  # brightness drifts and steps
    flat = [frame.mean() for frame, _ in SyntheticScene(base.with_changes(lighting=False))]
    assert np.ptp(flat) < np.ptp(means)
    # Noise: two renders of the same scene differ only by the noise field, frame to frame.
    quiet = next(iter(SyntheticScene(base.with_changes(noise=False))))[0].astype(int)
    noisy = next(iter(SyntheticScene(base)))[0].astype(int)
    assert 1.0 < np.std(noisy - quiet) < 20.0
    # Motion blur: fast objects smear; ground truth stays the same with or without blur.
    sharp = list(SyntheticScene(base.with_changes(motion_blur=False, frames=30)))
    blurred = list(SyntheticScene(base.with_changes(frames=30)))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(sharp, blurred, strict=True))
    for (_, ta), (_, tb) in zip(sharp, blurred, strict=True):
        np.testing.assert_array_equal(ta.boxes, tb.boxes)


def test_difficulty_factors_scale_what_they_name_and_nothing_else():
    """Faster pans and shake, wider posts, more stops and crossings: each factor changes its
    own part of the scene; the births, shapes and paths of the default scene stay as they were
    (the factors consume no random draws)."""
    base = SceneConfig(width=320, height=180, frames=120, seed=5, camera_motion=True)

    def camera_speed(config: SceneConfig) -> float:
        return float(np.mean([math.hypot(s.cam_vx, s.cam_vy)
                              for s in SyntheticScene(config).states()]))

    assert camera_speed(base.with_changes(pan_speed=4.0)) > 2.5 * camera_speed(base)
    plain = World(base)
    wide = World(base.with_changes(occluder_width=3.0))
    assert plain.posts and [p.x0 for p in wide.posts] == [p.x0 for p in plain.posts]
    for thin, thick in zip(plain.posts, wide.posts, strict=True):
        assert thick.texture.shape[1] >= 3 * thin.texture.shape[1] - 2
    # Same first frame of bodies whatever the factors: they only act from then on.
    first = SyntheticScene(base.with_changes(stops=3.0, crossings=2.0, shake=2.0)).states()
    assert [b.uid for b in next(iter(first)).bodies] == \
        [b.uid for b in next(iter(SyntheticScene(base).states())).bodies]
    config, _ = parse_synthetic_uri("synthetic://?pan_speed=3&shake=0.5&occluder_width=2"
                                    "&stops=2&crossings=3")
    assert (config.pan_speed, config.shake, config.occluder_width, config.stops,
            config.crossings) == (3.0, 0.5, 2.0, 2.0, 3.0)
    with pytest.raises(UserInputError, match="pan_speed must be between 0 and 10"):
        SceneConfig(pan_speed=11)


def test_quiet_scenes_empty_between_waves_and_leave_the_rest_unchanged():
    config, _ = parse_synthetic_uri("synthetic://?seed=0&size=320x240&fps=10&quiet=6&wave=4"
                                    "&frames=300")
    assert (config.quiet, config.wave) == (6.0, 4.0)
    counts = [len(state.bodies) for state in SyntheticScene(config).states()]
    empty = np.array(counts) == 0
    # Runs of empty frames (no target, no moving distractor): each quiet spell lasts `quiet`
    # seconds, then the first objects of the next wave come in (a few frames later).
    edges = np.flatnonzero(np.diff(np.concatenate([[0], empty.astype(int), [0]])))
    spells = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b < len(counts)]
    assert counts[0] > 0 and len(spells) >= 2
    assert all(60 <= b - a <= 66 for a, b in spells)
    # Without quiet spells the waves do nothing (they draw no random numbers of their own:
    # three scenes' pixels and truth hashed the same before and after the fields came).
    plain = SceneConfig(width=320, height=240, frames=40, seed=0)
    states = list(SyntheticScene(plain.with_changes(quiet=0.0, wave=3.0)).states())
    for a, b in zip(SyntheticScene(plain).states(), states, strict=True):
        assert [x.uid for x in a.bodies] == [x.uid for x in b.bodies]
        assert [x.cx for x in a.bodies] == [x.cx for x in b.bodies]
    with pytest.raises(UserInputError, match="quiet must be between 0 and 3600"):
        SceneConfig(quiet=-1)
    with pytest.raises(UserInputError, match="wave must be between 1 and 3600"):
        SceneConfig(wave=0.5)
