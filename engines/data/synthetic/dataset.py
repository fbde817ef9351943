"""Write a YOLO-format detection dataset sampled from many synthetic scenes.

Beside ``labels/`` an ``identities/`` folder gives each labelled box the identity of its object
(the same number in every image of the same scene), which trains the embedding head, and an
``ignore/`` folder (YOLO label format) the boxes of objects in view but less visible than
``min_visibility``: left unlabelled, they are regions evaluation ignores (as CityPersons
ignores its heavily occluded people), neither objects to find nor false detections.

Each image is a frame of its own scene (a random frame shape, object count, camera motion,
noise, lighting ...), taken after the scene has run for a while. Train and validation scenes
come from separate seed streams, so validation scenes are never seen in training.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detstream.engines.data.synthetic.config import CLASS_NAMES, SceneConfig
from detstream.engines.data.synthetic.render import Renderer
from detstream.engines.data.synthetic.world import World
from detstream.engines.data.yolo import write_data_yaml, write_identities, write_labels
from detstream.engines.spec import Detections

_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}
#: Identity of an object: ``scene * IDENTITY_BLOCK + track id`` (unique within a split).
IDENTITY_BLOCK = 100_000
_ASPECTS = ((16, 9), (4, 3), (1, 1), (3, 4))


@dataclass(frozen=True)
class DatasetSpec:
    """What :func:`write_dataset` writes.

    Attributes:
        train, val: number of images per split.
        imgsz: the longer side of every image, in pixels.
        seed: master seed; scene seeds are derived from it per split.
        min_visibility: targets less visible than this are left unlabelled.
        images_per_scene: frames taken from each scene (spread over its run).
        jpeg_quality: JPEG quality of the images.
    """

    train: int
    val: int
    imgsz: int = 320
    seed: int = 0
    min_visibility: float = 0.3
    images_per_scene: int = 6
    jpeg_quality: int = 92


def scene_config(split: str, scene: int, spec: DatasetSpec) -> SceneConfig:
    """The config of scene number ``scene`` of ``split``: varied but fully seeded."""
    seq = np.random.SeedSequence([spec.seed, _SPLIT_STREAM[split], scene])
    rng = np.random.default_rng(seq)
    aw, ah = _ASPECTS[int(rng.integers(len(_ASPECTS)))]
    scale = spec.imgsz / max(aw, ah)
    width, height = int(round(aw * scale / 2)) * 2, int(round(ah * scale / 2)) * 2
    return SceneConfig(
        width=width,
        height=height,
        fps=float(rng.choice([15.0, 25.0, 30.0])),
        frames=None,
        seed=int(seq.generate_state(2, np.uint64)[0] >> np.uint64(1)),
        objects=int(rng.integers(2, 15)),
        camera_motion=bool(rng.random() < 0.4),
        motion_blur=bool(rng.random() < 0.85),
        noise=bool(rng.random() < 0.85),
        lighting=bool(rng.random() < 0.85),
        distractors=bool(rng.random() < 0.9),
        occluders=bool(rng.random() < 0.7),
        min_size=min(12.0, 0.25 * height - 1),
    )


def scene_samples(config: SceneConfig, count: int) -> Iterator[tuple[np.ndarray, Detections]]:
    """``count`` frames of a scene, spread over its first seconds after a warm-up."""
    world = World(config)
    renderer = Renderer(world)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xDA7A]))
    warmup = int(rng.integers(0, int(2 * config.fps)))
    stride = max(1, int(round(0.4 * config.fps)))
    wanted = {warmup + k * stride for k in range(count)}
    for index in range(max(wanted) + 1):
        state = world.step()
        if index in wanted:
            rendered = renderer.render(state)
            yield rendered.image, rendered.truth


def labelled_and_hidden(truth: Detections, min_visibility: float
                        ) -> tuple[Detections, Detections]:
    """A frame's truth split as the dataset labels it: the objects to find (at least 2 px
    each way and ``min_visibility`` visible) and the ones in view but more hidden, regions
    evaluation ignores."""
    sized = (((truth.boxes[:, 2] - truth.boxes[:, 0]) >= 2)
             & ((truth.boxes[:, 3] - truth.boxes[:, 1]) >= 2))
    visibility = truth.data["visibility"]
    return (truth[sized & (visibility >= min_visibility)],
            truth[sized & (visibility > 0) & (visibility < min_visibility)])


def _write_scene(args: tuple[Path, str, int, DatasetSpec, int]) -> int:
    out, split, scene, spec, count = args
    config = scene_config(split, scene, spec)
    boxes_written = 0
    for k, (image, truth) in enumerate(scene_samples(config, count)):
        name = f"{scene:06d}_{k:02d}"
        keep, hidden = labelled_and_hidden(truth, spec.min_visibility)
        cv2.imwrite(str(out / "images" / split / f"{name}.jpg"), image,
                    [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
        write_labels(out / "labels" / split / f"{name}.txt", keep.class_ids, keep.boxes,
                     config.width, config.height)
        write_identities(out / "identities" / split / f"{name}.txt",
                         scene * IDENTITY_BLOCK + keep.track_ids)
        write_labels(out / "ignore" / split / f"{name}.txt", hidden.class_ids, hidden.boxes,
                     config.width, config.height)
        boxes_written += len(keep)
    return boxes_written


def write_dataset(out: str | Path, spec: DatasetSpec, workers: int | None = None,
                  progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write the dataset into ``out`` (``data.yaml``, ``images/``, ``labels/``).

    Args:
        out: output folder (created).
        spec: sizes and seed.
        workers: processes to render with (default: all cores); results do not depend on it.
        progress: called with the number of images finished after each scene.

    Returns:
        Counts: ``{"train_images", "train_boxes", "val_images", "val_boxes"}``.
    """
    out = Path(out)
    jobs: list[tuple[Path, str, int, DatasetSpec, int]] = []
    for split, total in (("train", spec.train), ("val", spec.val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        (out / "identities" / split).mkdir(parents=True, exist_ok=True)
        (out / "ignore" / split).mkdir(parents=True, exist_ok=True)
        for scene, start in enumerate(range(0, total, spec.images_per_scene)):
            jobs.append((out, split, scene, spec, min(spec.images_per_scene, total - start)))
    counts = {"train_images": spec.train, "train_boxes": 0, "val_images": spec.val, "val_boxes": 0}
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))

    def account(job: tuple[Path, str, int, DatasetSpec, int], boxes: int) -> None:
        counts[f"{job[1]}_boxes"] += boxes
        if progress is not None:
            progress(job[4])

    if workers == 1 or len(jobs) < 4:
        for job in jobs:
            account(job, _write_scene(job))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for job, boxes in zip(jobs, pool.map(_write_scene, jobs, chunksize=4), strict=True):
                account(job, boxes)
    write_data_yaml(
        out / "data.yaml", CLASS_NAMES, {"train": "images/train", "val": "images/val"},
        extra={"synthetic": {"seed": spec.seed, "imgsz": spec.imgsz,
                             "min_visibility": spec.min_visibility,
                             "images_per_scene": spec.images_per_scene}},
    )
    return counts
