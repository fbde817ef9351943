"""The training/validation data pipeline: sources, augmentations, datasets and the loader.

Runs on a small synthetic YOLO dataset written once per module, plus shared COCO128 when present.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detstream.engines.data import augment
from detstream.engines.data.detection import DetectionSource
from detstream.engines.data.loader import (
    AugmentConfig,
    TrainDataset,
    ValDataset,
    build_loader,
    collate,
)
from detstream.engines.data.synthetic.config import CLASS_NAMES
from detstream.engines.data.synthetic.dataset import (
    DatasetSpec,
    scene_config,
    scene_samples,
    write_dataset,
)
from detstream.engines.errors import UserInputError
from tests.conftest import shared_path

S = 256
NO_AUGMENT = AugmentConfig(mosaic=0.0, translate=0.0, scale=0.0, hsv_h=0.0, hsv_s=0.0,
                           hsv_v=0.0, fliplr=0.0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic YOLO dataset whose first train image is made a background image."""
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, DatasetSpec(train=16, val=8, imgsz=256, seed=0), workers=1)
    first = sorted((root / "labels" / "train").glob("*.txt"))[0]
    first.unlink()
    return root / "data.yaml"


@pytest.fixture(scope="module")
def train_source(dataset: Path) -> DetectionSource:
    return DetectionSource.from_yolo(dataset, "train")


def _expected_boxes(label: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel xyxy boxes of a YOLO label file, parsed independently of the code under test."""
    if not label.exists():
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    rows = np.loadtxt(label, ndmin=2).reshape(-1, 5)
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, rows[:, 0].astype(np.int64)


def _imread(path: str | Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(path)
    return image


def _solid(width: int, height: int, colour: int) -> np.ndarray:
    return np.full((height, width, 3), colour, np.uint8)


# -- DetectionSource --------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "val"])
def test_yolo_source_boxes_equal_label_files(dataset: Path, split: str) -> None:
    source = DetectionSource.from_yolo(dataset, split)
    assert source.class_names == CLASS_NAMES
    assert len(source) == (16 if split == "train" else 8)
    for i in range(len(source)):
        path = source.image_path(i)
        label = path.parents[2] / "labels" / split / f"{path.stem}.txt"
        height, width = _imread(path).shape[:2]
        boxes, classes = source.annotations(i)  # image size from the header
        want_boxes, want_classes = _expected_boxes(label, width, height)
        assert boxes.dtype == np.float32 and boxes.shape == (len(want_boxes), 4)
        assert classes.dtype == np.int64
        np.testing.assert_allclose(boxes, want_boxes, atol=0.01)
        np.testing.assert_array_equal(classes, want_classes)
        image = source.load_image(i)
        assert image.dtype == np.uint8 and image.shape == (height, width, 3)


def test_synthetic_labels_and_ignored_regions_split_the_truth_by_visibility(
        tmp_path: Path) -> None:
    # Objects at least min_visibility visible are labelled; those in view but less visible
    # are regions validation ignores; fully hidden ones are neither.
    spec = DatasetSpec(train=2, val=12, imgsz=256, seed=5, min_visibility=0.5)
    write_dataset(tmp_path, spec, workers=1)
    source = DetectionSource.from_yolo(tmp_path / "data.yaml", "val")
    ignored_total = 0
    for scene in range(2):
        samples = scene_samples(scene_config("val", scene, spec), spec.images_per_scene)
        for k, (_, truth) in enumerate(samples):
            i = [source.image_path(j).stem for j in range(len(source))].index(
                f"{scene:06d}_{k:02d}")
            vis = truth.data["visibility"]
            for (boxes, classes), wanted in ((source.annotations(i), vis >= 0.5),
                                             (source.ignored(i), (vis > 0) & (vis < 0.5))):
                np.testing.assert_allclose(boxes, truth.boxes[wanted], atol=0.05)
                np.testing.assert_array_equal(classes, truth.class_ids[wanted])
            ignored_total += int(((vis > 0) & (vis < 0.5)).sum())
    assert ignored_total > 0  # the check above saw some


def test_yolo_source_background_image_has_no_boxes(train_source: DetectionSource) -> None:
    boxes, classes = train_source.annotations(0)
    assert boxes.shape == (0, 4) and classes.shape == (0,)


def test_missing_image_names_the_file(dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(dataset.parent, root)
    source = DetectionSource.from_yolo(root / "data.yaml", "val")
    source.image_path(2).unlink()
    with pytest.raises(UserInputError, match=source.image_path(2).name):
        source.load_image(2)


def test_coco_source_maps_categories_and_ignores_crowds(tmp_path: Path) -> None:
    for name, (w, h) in {"a.jpg": (64, 48), "b.jpg": (40, 40)}.items():
        cv2.imwrite(str(tmp_path / name), _solid(w, h, 90))
    doc = {
        "images": [{"id": 7, "file_name": "b.jpg", "width": 40, "height": 40},
                   {"id": 3, "file_name": "a.jpg", "width": 64, "height": 48}],
        "categories": [{"id": 9, "name": "nine"}, {"id": 2, "name": "two"},
                       {"id": 5, "name": "five"}],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": 9, "bbox": [1, 2, 10, 20], "iscrowd": 0},
            {"id": 2, "image_id": 3, "category_id": 2, "bbox": [5, 5, 30, 30], "iscrowd": 1},
            {"id": 3, "image_id": 3, "category_id": 5, "bbox": [0, 0, 4, 6]},
            {"id": 4, "image_id": 7, "category_id": 2, "bbox": [10, 10, 0, 5], "iscrowd": 0},
        ],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    source = DetectionSource.from_coco(path, tmp_path)
    assert source.class_names == ("two", "five", "nine")
    assert [source.image_path(i).name for i in range(len(source))] == ["a.jpg", "b.jpg"]
    boxes, classes = source.annotations(0)
    np.testing.assert_allclose(boxes, [[1, 2, 11, 22], [0, 0, 4, 6]])
    np.testing.assert_array_equal(classes, [2, 1])
    boxes, classes = source.annotations(1)  # only a zero-width box: skipped
    assert boxes.shape == (0, 4) and classes.shape == (0,)
    boxes, classes = source.ignored(0)  # the crowd: a region evaluation ignores
    np.testing.assert_allclose(boxes, [[5, 5, 35, 35]])
    np.testing.assert_array_equal(classes, [0])
    assert source.ignored(1)[0].shape == (0, 4)
    assert source.image_size(0) == (64, 48)
    assert source.load_image(1).shape == (40, 40, 3)


def test_coco_source_rejects_unknown_category(tmp_path: Path) -> None:
    doc = {"images": [{"id": 1, "file_name": "x.jpg"}], "categories": [{"id": 1, "name": "a"}],
           "annotations": [{"id": 4, "image_id": 1, "category_id": 3, "bbox": [0, 0, 2, 2]}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserInputError, match="category id 3"):
        DetectionSource.from_coco(path, tmp_path)
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(UserInputError, match="not a COCO detection file"):
        DetectionSource.from_coco(path, tmp_path)


# -- augmentations ----------------------------------------------------------------------------


def test_affine_with_identity_parameters_changes_nothing() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (S, S, 3), dtype=np.uint8)
    boxes = np.array([[10.5, 20.25, 60, 90], [0, 0, S, S]], np.float32)
    classes = np.array([3, 1], np.int64)
    out, out_boxes, out_classes = augment.random_affine(image, boxes, classes, S, rng)
    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(out_boxes, boxes)
    np.testing.assert_array_equal(out_classes, classes)


@pytest.mark.parametrize("seed", range(4))
def test_affine_boxes_follow_the_pixels(seed: int) -> None:
    """A filled rectangle's warped pixels span the box the affine step reports."""
    image = _solid(300, 200, 40)
    image[50:120, 80:210] = 255
    boxes = np.array([[80, 50, 210, 120]], np.float32)
    rng = np.random.default_rng(seed)
    out, out_boxes, _ = augment.random_affine(image, boxes, np.zeros(1, np.int64), S, rng,
                                              degrees=10, translate=0.1, scale=0.3, shear=3)
    ys, xs = np.nonzero(out[:, :, 0] > 128)
    found = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert out_boxes.shape == (1, 4)
    np.testing.assert_allclose(out_boxes[0], found, atol=1.5)


def test_affine_drops_boxes_pushed_out_and_keeps_boxes_in_range() -> None:
    image = _solid(2 * S, 2 * S, 100)
    boxes = np.array([[0, 0, 30, 30], [S - 20, S - 20, S + 20, S + 20]], np.float32)
    out, out_boxes, out_classes = augment.random_affine(
        image, boxes, np.array([4, 5]), S, np.random.default_rng(0))
    assert out.shape == (S, S, 3)
    np.testing.assert_array_equal(out_classes, [5])  # the corner box lies outside the crop
    np.testing.assert_allclose(out_boxes, [[S / 2 - 20, S / 2 - 20, S / 2 + 20, S / 2 + 20]])


def test_mosaic_places_each_image_with_its_boxes() -> None:
    """Every output box sits on pixels of its own image; boxes come from several images."""
    # Long sides of S or 2S (an exact 2x2 average) keep the painted edges sharp after resizing.
    sizes = [(256, 150), (100, 256), (512, 288), (256, 90)]
    samples = []
    for k, (w, h) in enumerate(sizes):
        image = _solid(w, h, 40 + 50 * k)
        image[h // 4:3 * h // 4, w // 4:3 * w // 4] = 60 + 50 * k  # the inner box, own shade
        boxes = np.array([[0, 0, w, h], [w // 4, h // 4, 3 * w // 4, 3 * h // 4]], np.float32)
        samples.append((image, boxes, np.array([k, k], np.int64)))
    sources = set()
    for seed in range(5):
        canvas, boxes, classes = augment.mosaic4(samples, S, np.random.default_rng(seed))
        assert canvas.shape == (2 * S, 2 * S, 3) and canvas.dtype == np.uint8
        assert boxes.dtype == np.float32 and classes.dtype == np.int64
        assert (boxes >= 0).all() and (boxes <= 2 * S).all()
        assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()
        for k in set(classes.tolist()):
            # Each box is exactly the canvas region painted with its shade(s).
            own = boxes[classes == k]
            areas = (own[:, 2] - own[:, 0]) * (own[:, 3] - own[:, 1])
            for box, shades in ((own[np.argmax(areas)], (40 + 50 * k, 60 + 50 * k)),
                                (own[np.argmin(areas)], (60 + 50 * k,))):
                ys, xs = np.nonzero(np.isin(canvas[:, :, 0], shades))
                np.testing.assert_allclose(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                           atol=0.01)
        assert len(set(classes.tolist())) >= 2
        sources.update(classes.tolist())
    assert sources == {0, 1, 2, 3}


def test_flip_mirrors_exactly() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (100, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 5, 50, 40], [100.5, 0, 160, 100]], np.float32)
    flipped, flipped_boxes = augment.horizontal_flip(image, boxes, rng, p=1.0)
    np.testing.assert_array_equal(flipped, image[:, ::-1])
    np.testing.assert_array_equal(flipped_boxes, [[110, 5, 150, 40], [0, 0, 59.5, 100]])
    back, back_boxes = augment.horizontal_flip(flipped, flipped_boxes, rng, p=1.0)
    np.testing.assert_array_equal(back, image)
    np.testing.assert_array_equal(back_boxes, boxes)
    same, same_boxes = augment.horizontal_flip(image, boxes, rng, p=0.0)
    assert same is image and same_boxes is boxes


def test_hsv_jitter_is_seeded_and_off_at_zero_gain() -> None:
    image = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    untouched = augment.hsv_jitter(image.copy(), 0, 0, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(untouched, image)
    a = augment.hsv_jitter(image.copy(), 0.1, 0.7, 0.4, np.random.default_rng(5))
    b = augment.hsv_jitter(image.copy(), 0.1, 0.7, 0.4, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == image.shape and not np.array_equal(a, image)


def test_augmentations_handle_zero_boxes() -> None:
    rng = np.random.default_rng(0)
    empty, none = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    samples = [(_solid(100, 80, 50), empty, none)] * 4
    canvas, boxes, classes = augment.mosaic4(samples, S, rng)
    assert boxes.shape == (0, 4) and classes.shape == (0,)
    out, boxes, classes = augment.random_affine(canvas, boxes, classes, S, rng, 5, 0.1, 0.5, 2)
    assert out.shape == (S, S, 3) and boxes.shape == (0, 4) and classes.shape == (0,)
    out, boxes = augment.horizontal_flip(out, boxes, rng, p=1.0)
    assert boxes.shape == (0, 4)


# -- datasets and loader ----------------------------------------------------------------------


def test_val_dataset_round_trip(dataset: Path) -> None:
    source = DetectionSource.from_yolo(dataset, "val")
    val = ValDataset(source, S)
    for i in range(len(val)):
        image, targets, meta = val[i]
        assert image.dtype == torch.uint8 and image.shape == (3, S, S)
        assert targets.dtype == torch.float32 and targets.shape[1] == 5
        boxes, classes = source.annotations(i)
        np.testing.assert_array_equal(meta["boxes"], boxes)
        np.testing.assert_array_equal(meta["classes"], classes)
        np.testing.assert_array_equal(targets[:, 0].numpy(), classes)
        back = meta["letterbox"].to_frame(targets[:, 1:].numpy())
        np.testing.assert_allclose(back, boxes, atol=1e-3)
        assert meta["path"] == str(source.image_path(i))
    # RGB channel order: the tensor is the letterboxed BGR image reversed.
    image, _, meta = val[0]
    bgr = _imread(meta["path"])
    info = meta["letterbox"]
    y, x = int(info.pad_y) + 10, int(info.pad_x) + 10
    row = int(round((y + 0.5 - info.pad_y) / info.ratio - 0.5))
    col = int(round((x + 0.5 - info.pad_x) / info.ratio - 0.5))
    np.testing.assert_allclose(image[:, y, x].numpy(), bgr[row, col, ::-1], atol=40)


def test_val_dataset_background_image(dataset: Path) -> None:
    val = ValDataset(DetectionSource.from_yolo(dataset, "train"), S)
    _, targets, meta = val[0]
    assert targets.shape == (0, 5) and meta["boxes"].shape == (0, 4)


def test_train_items_have_the_contract_shapes(train_source: DetectionSource) -> None:
    train = TrainDataset(train_source, S, AugmentConfig(degrees=5, shear=2), seed=3)
    mosaics = 0
    for i in range(len(train)):
        image, targets, meta = train[i]
        assert image.dtype == torch.uint8 and image.shape == (3, S, S)
        assert targets.dtype == torch.float32 and targets.ndim == 2 and targets.shape[1] == 5
        boxes = targets[:, 1:]
        assert (boxes >= 0).all() and (boxes <= S).all()
        assert (boxes[:, 2] - boxes[:, 0] >= augment.MIN_SIDE).all()
        assert (boxes[:, 3] - boxes[:, 1] >= augment.MIN_SIDE).all()
        classes = targets[:, 0]
        assert ((classes >= 0) & (classes < len(CLASS_NAMES)) & (classes == classes.round())).all()
        mosaics += meta["mosaic"]
    assert mosaics == len(train)  # mosaic probability 1


def test_train_items_are_reproducible_per_epoch(train_source: DetectionSource) -> None:
    a, b = TrainDataset(train_source, S, seed=7), TrainDataset(train_source, S, seed=7)
    for i in (1, 5):
        first, second = a[i], b[i]
        assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    before = a[5]
    a.set_epoch(1)
    after = a[5]
    assert a.epoch == 1
    assert not torch.equal(before[0], after[0])
    b.set_epoch(1)
    assert torch.equal(b[5][0], after[0])


def test_train_without_mosaic_or_augmentation_is_a_letterbox(dataset: Path,
                                                            train_source: DetectionSource) -> None:
    train = TrainDataset(train_source, S, NO_AUGMENT, seed=0)
    train.mosaic_enabled = False
    val = ValDataset(train_source, S)
    for i in (0, 3):  # a background image and a labelled one
        image, targets, meta = train[i]
        want_image, want_targets, _ = val[i]
        assert not meta["mosaic"]
        assert torch.equal(image, want_image)
        keep = ((want_targets[:, 3] - want_targets[:, 1] >= augment.MIN_SIDE)
                & (want_targets[:, 4] - want_targets[:, 2] >= augment.MIN_SIDE))
        torch.testing.assert_close(targets, want_targets[keep])


def test_collate_numbers_the_images() -> None:
    items = [(torch.zeros(3, 32, 32, dtype=torch.uint8), torch.ones(n, 5), {"index": n})
             for n in (2, 0, 3)]
    images, targets, metas = collate(items)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.uint8
    assert targets.shape == (5, 6) and targets.dtype == torch.float32
    assert targets[:, 0].tolist() == [0, 0, 2, 2, 2]
    assert [m["index"] for m in metas] == [2, 0, 3]
    _, empty, _ = collate(items[1:2])
    assert empty.shape == (0, 6)


def test_persistent_workers_follow_set_epoch(train_source: DetectionSource) -> None:
    train = TrainDataset(train_source, S, seed=1)
    local = TrainDataset(train_source, S, seed=1)
    loader = build_loader(train, batch_size=4, workers=2, shuffle=False)
    train[0]  # use OpenCV in this process before the workers fork
    for epoch in (0, 2):
        train.set_epoch(epoch)
        local.set_epoch(epoch)
        images, targets, metas = next(iter(loader))
        assert [m["index"] for m in metas] == [0, 1, 2, 3]
        for k in range(4):
            assert torch.equal(images[k], local[k][0])


def test_shuffled_order_depends_on_seed_and_epoch(train_source: DetectionSource) -> None:
    def order(seed: int, epoch: int) -> list[int]:
        loader = build_loader(ValDataset(train_source, 64), 16, 0, shuffle=True, seed=seed)
        loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        return [m["index"] for m in next(iter(loader))[2]]

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert sorted(order(1, 0)) == list(range(16))


@pytest.mark.parametrize("call", [
    lambda src: AugmentConfig(scale=1.5),
    lambda src: AugmentConfig(fliplr=-0.1),
    lambda src: TrainDataset(src, 20),
    lambda src: build_loader(ValDataset(src, 64), 0, 0, shuffle=False),
    lambda src: build_loader(ValDataset(src, 64), 2, 0, shuffle=False, distributed=True),
])
def test_bad_settings_raise_user_errors(call: Callable[[DetectionSource], object],
                                       train_source: DetectionSource) -> None:
    with pytest.raises(UserInputError):
        call(train_source)


def test_loader_over_coco128() -> None:
    data = shared_path("coco128/data.yaml")
    source = DetectionSource.from_yolo(data, "train")
    assert len(source) == 128 and len(source.class_names) == 80
    loader = build_loader(ValDataset(source, 320), batch_size=32, workers=0, shuffle=False)
    seen, background = 0, 0
    for images, targets, metas in loader:
        assert images.shape[1:] == (3, 320, 320)
        boxes = targets[:, 2:]
        assert (boxes >= 0).all() and (boxes <= 320).all()
        assert ((targets[:, 1] >= 0) & (targets[:, 1] < 80)).all()
        for meta in metas:
            frame = meta["boxes"]
            info = meta["letterbox"]
            assert (frame[:, 0::2] <= info.frame_width).all()
            assert (frame[:, 1::2] <= info.frame_height).all()
            background += len(frame) == 0
        seen += len(images)
    assert seen == 128 and background == 2
    train = TrainDataset(source, 320, seed=0)
    for i in range(0, 128, 16):
        _, targets, _ = train[i]
        assert (targets[:, 1:] >= 0).all() and (targets[:, 1:] <= 320).all()
