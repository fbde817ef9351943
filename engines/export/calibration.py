"""The frames an INT8 model is calibrated on, and the labelled images that check it.

``--calibration SOURCE`` names where the frames come from: a YOLO ``data.yaml`` (its ``val``
split, or ``train`` when it has none), a folder of images (with YOLO ``labels/`` beside
``images/`` when it has them), a video file, or a ``synthetic://`` URI. Without one, a model
that detects the synthetic world's classes is calibrated on frames of that world; any other
model needs real images.

The accuracy check needs labels: a labelled source gives its own images, shuffled with a fixed
seed, the first ``frames`` to calibration and the next ``check_images`` to the check (never the
same image in both). A model of the synthetic world is checked on held-out synthetic images
(scenes of the dataset's ``test`` stream, which no training split uses) whatever it was
calibrated on; for another model an unlabelled source is refused, since nothing could tell
whether INT8 kept its accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detstream.engines.data.synthetic.config import CLASS_NAMES, parse_synthetic_uri
from detstream.engines.data.synthetic.dataset import (
    DatasetSpec,
    labelled_and_hidden,
    scene_config,
    scene_samples,
)
from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections, ModelSpec
from detstream.engines.train.validate import LabelledImage

#: Calibration frames when ``--calibration-frames`` is not given.
DEFAULT_FRAMES = 64
#: Held-out images the accuracy check scores when not told otherwise.
DEFAULT_CHECK_IMAGES = 128
#: Frames taken from each synthetic scene (spread over its first seconds).
_PER_SCENE = 2
#: The first held-out synthetic scene: far above any calibration scene's number.
_CHECK_SCENES_FROM = 100_000
_SHUFFLE_SEED = 0
_VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".flv", ".mpg")


@dataclass(frozen=True)
class CalibrationData:
    """What an INT8 export is calibrated and checked on.

    Attributes:
        frames: uint8 BGR frames for calibration.
        check: labelled images for the accuracy check, none of them a calibration frame.
        class_names: the names the check's class ids index.
        source: where the frames came from, in words (kept in the INT8 file's metadata).
        check_source: where the check images came from, in words.
    """

    frames: list[np.ndarray]
    check: list[LabelledImage]
    class_names: tuple[str, ...]
    source: str
    check_source: str


def synthetic_model(spec: ModelSpec) -> bool:
    """The model detects the synthetic world's classes (the default model, or one trained on
    ``detstream synth dataset``)."""
    return tuple(spec.class_names) == tuple(CLASS_NAMES)


def calibration_data(source: str | None, spec: ModelSpec, model_name: str,
                     frames: int = DEFAULT_FRAMES,
                     check_images: int = DEFAULT_CHECK_IMAGES) -> CalibrationData:
    """Calibration frames from ``source`` and the held-out images that check the result.

    Args:
        source: ``--calibration`` (a data.yaml, image folder, video file or synthetic:// URI),
            or ``None`` for the synthetic world.
        spec: the model's contract (its classes and input size).
        model_name: as the user named the model, for messages.
        frames: calibration frames wanted.
        check_images: labelled held-out images wanted for the check.

    Raises:
        UserInputError: no usable source for this model, an unreadable or too small source,
            or labels whose classes do not fit the model.
    """
    if frames < 1 or check_images < 1:
        raise UserInputError("--calibration-frames and --check-images must be at least 1")
    if source is None:
        if not synthetic_model(spec):
            raise UserInputError(
                f"the INT8 export of {model_name} needs --calibration with real images of its "
                f"{len(spec.class_names)} classes (a YOLO data.yaml, or a folder of images with "
                "labels/ beside images/): the default, the synthetic world, only suits models "
                "of its own classes")
        size = spec.input_size[0]
        calibration = [image for image, _ in _synthetic_images(0, frames, size)]
        return _with_synthetic_check(calibration, "the synthetic world (held-out scenes)",
                                     spec, check_images)
    if source.startswith("synthetic://"):
        config, _ = parse_synthetic_uri(source)
        calibration = [image for image, _ in scene_samples(config, frames)]
        return _with_synthetic_check(calibration, source, spec, check_images)
    path = Path(source).expanduser()
    if path.suffix.lower() in (".yaml", ".yml"):
        return _from_data_yaml(path, spec, frames, check_images)
    if path.is_dir():
        return _from_folder(path, spec, frames, check_images)
    if path.is_file() and path.suffix.lower() in _VIDEO_SUFFIXES:
        calibration = _video_frames(path, frames)
        return _unlabelled(calibration, str(path), spec, model_name, check_images)
    raise UserInputError(f"--calibration {source}: expected a YOLO data.yaml, a folder of "
                         "images, a video file or a synthetic:// URI")


def _synthetic_images(first_scene: int, count: int, size: int
                      ) -> list[tuple[np.ndarray, Detections]]:
    """``count`` frames of the synthetic dataset's ``test`` stream (scenes no training split
    uses), ``size`` pixels on their longer side, from scene ``first_scene`` on."""
    spec = DatasetSpec(train=0, val=0, imgsz=size)
    images: list[tuple[np.ndarray, Detections]] = []
    scene = first_scene
    while len(images) < count:
        images.extend(scene_samples(scene_config("test", scene, spec), _PER_SCENE))
        scene += 1
    return images[:count]


def _with_synthetic_check(calibration: list[np.ndarray], described: str, spec: ModelSpec,
                          check_images: int) -> CalibrationData:
    """Calibration frames, checked on held-out synthetic images (the model must detect the
    synthetic world's classes)."""
    if not synthetic_model(spec):
        raise UserInputError(
            f"{described} has the synthetic world's classes, the model has "
            f"{len(spec.class_names)} others: calibrate it on labelled images of its own "
            "classes (a YOLO data.yaml)")
    dataset = DatasetSpec(train=0, val=0)
    check = []
    for image, truth in _synthetic_images(_CHECK_SCENES_FROM, check_images,
                                          spec.input_size[0]):
        keep, hidden = labelled_and_hidden(truth, dataset.min_visibility)
        check.append(LabelledImage(image, keep.boxes, keep.class_ids, hidden.boxes,
                                   hidden.class_ids))
    return CalibrationData(calibration, check, tuple(CLASS_NAMES), described,
                           f"{len(check)} held-out synthetic images")


def _unlabelled(calibration: list[np.ndarray], described: str, spec: ModelSpec,
                model_name: str, check_images: int) -> CalibrationData:
    """Frames without labels: only a synthetic-world model can still be checked."""
    if not synthetic_model(spec):
        raise UserInputError(
            f"--calibration {described} has no labels, and --model {model_name} can only be "
            "checked on labelled images of its classes: pass a YOLO data.yaml (or a folder of "
            "images with labels/ beside images/)")
    return _with_synthetic_check(calibration, described, spec, check_images)


def _from_data_yaml(path: Path, spec: ModelSpec, frames: int,
                    check_images: int) -> CalibrationData:
    from detstream.engines.data.detection import DetectionSource
    from detstream.engines.data.yolo import load_data_yaml

    config = load_data_yaml(path)
    split = "val" if config.images("val") else "train"
    labelled = DetectionSource.from_yolo(path, split)
    return _split_labelled(labelled, f"{path} ({split} split)", spec, frames, check_images)


def _from_folder(path: Path, spec: ModelSpec, frames: int,
                 check_images: int) -> CalibrationData:
    from detstream.engines.data.detection import DetectionSource
    from detstream.engines.data.yolo import IMAGE_SUFFIXES, label_path

    images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise UserInputError(f"--calibration {path}: the folder holds no images "
                             f"({', '.join(IMAGE_SUFFIXES)})")
    labels = [label_path(p) for p in images]
    if any(label.is_file() for label in labels):
        labelled = DetectionSource(images, spec.class_names, label_files=labels)
        return _split_labelled(labelled, f"{path} (labelled)", spec, frames, check_images)
    picked = _spread(len(images), frames)
    calibration = [_read_image(images[i]) for i in picked]
    return _unlabelled(calibration, str(path), spec, str(path), check_images)


def _split_labelled(labelled, described: str, spec: ModelSpec, frames: int,
                    check_images: int) -> CalibrationData:
    """A labelled source's images shuffled once: calibration first, then the check."""
    names = tuple(labelled.class_names)
    if len(names) != len(spec.class_names):
        raise UserInputError(f"{described}: the labels have {len(names)} classes, the model "
                             f"{len(spec.class_names)}; calibrate on images of its classes")
    if len(labelled) < frames + 1:
        raise UserInputError(f"{described} has {len(labelled)} images: fewer than "
                             f"--calibration-frames {frames} plus one to check on")
    order = np.random.default_rng(_SHUFFLE_SEED).permutation(len(labelled))
    calibration = [labelled.load_image(int(i)) for i in order[:frames]]
    check = []
    for i in order[frames:frames + check_images]:
        image, boxes, class_ids = labelled.sample(int(i))
        ignore_boxes, ignore_ids = labelled.ignored(int(i))
        check.append(LabelledImage(image, boxes, class_ids, ignore_boxes, ignore_ids))
    return CalibrationData(calibration, check, names, described,
                           f"{len(check)} other images of {described}")


def _spread(total: int, count: int) -> Sequence[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them when fewer)."""
    if total <= count:
        return range(total)
    return sorted({int(i) for i in np.linspace(0, total - 1, count)})


def _read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserInputError(f"--calibration: {path} is not a readable image")
    return image


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread over the video (decoded as ``detstream run`` decodes it)."""
    import av

    from detstream.engines.data.video import frame_to_bgr

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            total = stream.frames
            # Without a frame count: one frame every half second from the start.
            every = max(1, round(float(stream.average_rate or 2) / 2))
            wanted = set(_spread(total, count)) if total > 0 else None
            frames: list[np.ndarray] = []
            for index, frame in enumerate(container.decode(stream)):
                if (index in wanted) if wanted is not None else index % every == 0:
                    frames.append(frame_to_bgr(frame))
                if len(frames) >= count:
                    break
    except (av.FFmpegError, IndexError) as exc:
        raise UserInputError(f"--calibration {path}: the video cannot be read "
                             f"({type(exc).__name__})") from None
    if not frames:
        raise UserInputError(f"--calibration {path}: no frame could be decoded")
    return frames
