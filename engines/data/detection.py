"""A source of labelled images for training and evaluation, read from YOLO or COCO datasets.

:class:`DetectionSource` answers three questions about image ``i``: where it is
(:meth:`~DetectionSource.image_path`), what it looks like (:meth:`~DetectionSource.load_image`,
uint8 BGR as OpenCV decodes it) and what is in it (:meth:`~DetectionSource.annotations`, pixel
``xyxy`` boxes and contiguous class ids). It does no augmentation; see
:mod:`detstream.engines.data.augment` and :mod:`detstream.engines.data.loader`.

Labels are read once and kept in memory. YOLO labels are normalised, so turning them into pixels
needs the image size: it is taken from the decoded image when the image has been loaded, else
from the file header (Pillow reads it without decoding the pixels).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detstream.engines.boxes import cxcywh_to_xyxy
from detstream.engines.data.yolo import label_path, load_data_yaml, read_identities, read_labels
from detstream.engines.errors import UserInputError

#: EXIF orientations that swap width and height (OpenCV applies them when decoding).
_EXIF_TRANSPOSED = (5, 6, 7, 8)


class DetectionSource:
    """Images with their boxes, indexed 0..len-1.

    Build it with :meth:`from_yolo` or :meth:`from_coco` rather than by hand.

    Attributes:
        class_names: class names, indexed by class id.
    """

    def __init__(self, images: Sequence[Path], class_names: Sequence[str],
                 labels: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
                 sizes: Sequence[tuple[int, int] | None] | None = None,
                 label_files: Sequence[Path] | None = None,
                 ignored: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        """Wrap a list of images and their labels (prefer the ``from_*`` constructors).

        Args:
            images: image files.
            class_names: class names, indexed by class id.
            labels: per image, pixel ``xyxy`` boxes float32 [N, 4] and class ids int64 [N]
                (COCO); None when labels are read lazily from ``label_files``.
            sizes: per image, known ``(width, height)`` or None.
            label_files: per image, the YOLO label file (normalised ``class cx cy w h`` rows).
            ignored: per image, pixel ``xyxy`` boxes and class ids of regions that count
                neither way in evaluation (COCO's crowds); YOLO sources read theirs lazily
                from an ``ignore`` folder beside ``labels`` (see :meth:`ignored`).
        """
        self._images = [Path(p) for p in images]
        self.class_names: tuple[str, ...] = tuple(class_names)
        n = len(self._images)
        self._pixel_labels = list(labels) if labels is not None else None
        self._label_files = list(label_files) if label_files is not None else None
        self._ignored = list(ignored) if ignored is not None else None
        if (self._pixel_labels is None) == (self._label_files is None):
            raise ValueError("DetectionSource: give exactly one of labels or label_files")
        # Normalised xyxy boxes of YOLO images, filled on first read.
        self._normalised: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n
        self._sizes: list[tuple[int, int] | None] = list(sizes) if sizes is not None else [None] * n
        for name, seq in (("labels", self._pixel_labels), ("label_files", self._label_files),
                          ("sizes", self._sizes), ("ignored", self._ignored)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"DetectionSource: {n} images but {len(seq)} {name}")

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_yolo(cls, data_yaml: str | Path, split: str) -> DetectionSource:
        """The images of one split of a YOLO dataset.

        Args:
            data_yaml: the dataset's ``data.yaml``.
            split: ``train``, ``val`` or ``test``.

        Raises:
            UserInputError: a missing or malformed ``data.yaml``, an unknown split, or a split
                without images.
        """
        config = load_data_yaml(data_yaml)
        images = config.images(split)
        if not images:
            folders = ", ".join(str(p) for p in config.splits[split])
            raise UserInputError(f"{config.path}: the '{split}' split has no images (looked in "
                                 f"{folders})")
        return cls(images, config.names, label_files=[label_path(p) for p in images])

    @classmethod
    def from_coco(cls, json_path: str | Path, image_dir: str | Path) -> DetectionSource:
        """The images of a COCO detection JSON file.

        Category ids are mapped to contiguous class ids 0..C-1 in increasing id order; crowd
        annotations (``iscrowd: 1``) become ignored regions (:meth:`ignored`), as COCO's own
        evaluation treats them; boxes without area are skipped. Images keep the order of their
        ids.

        Args:
            json_path: the annotation file (``images``, ``annotations``, ``categories``).
            image_dir: folder the images' ``file_name`` entries are relative to.

        Raises:
            UserInputError: the file is missing, is not JSON, lacks a key, or an annotation
                names an unknown image or category.
        """
        json_path, image_dir = Path(json_path), Path(image_dir)
        if not json_path.is_file():
            raise UserInputError(f"COCO annotation file {json_path} does not exist")
        try:
            doc: Any = json.loads(json_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{json_path} is not valid JSON: {exc}") from None
        try:
            categories = sorted(doc["categories"], key=lambda c: int(c["id"]))
            class_of = {int(c["id"]): k for k, c in enumerate(categories)}
            names = [str(c["name"]) for c in categories]
            images = sorted(doc["images"], key=lambda im: int(im["id"]))
            row_of = {int(im["id"]): k for k, im in enumerate(images)}
            boxes: list[list[list[float]]] = [[] for _ in images]
            classes: list[list[int]] = [[] for _ in images]
            crowd_boxes: list[list[list[float]]] = [[] for _ in images]
            crowd_classes: list[list[int]] = [[] for _ in images]
            for ann in doc["annotations"]:
                image_id, category = int(ann["image_id"]), int(ann["category_id"])
                if image_id not in row_of:
                    raise UserInputError(f"{json_path}: annotation {ann.get('id')} refers to "
                                         f"image id {image_id}, which is not in 'images'")
                if category not in class_of:
                    raise UserInputError(f"{json_path}: annotation {ann.get('id')} refers to "
                                         f"category id {category}, which is not in 'categories'")
                x, y, w, h = (float(v) for v in ann["bbox"])
                if w <= 0 or h <= 0:
                    continue
                crowd = bool(ann.get("iscrowd", 0))
                (crowd_boxes if crowd else boxes)[row_of[image_id]].append([x, y, x + w, y + h])
                (crowd_classes if crowd else classes)[row_of[image_id]].append(class_of[category])
            paths = [image_dir / str(im["file_name"]) for im in images]
            sizes = [(int(im["width"]), int(im["height"])) if "width" in im and "height" in im
                     else None for im in images]
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, UserInputError):
                raise
            raise UserInputError(f"{json_path} is not a COCO detection file "
                                 f"(problem: {type(exc).__name__} {exc})") from None
        if not images:
            raise UserInputError(f"{json_path} lists no images")
        labels = [(np.asarray(b, np.float32).reshape(-1, 4), np.asarray(c, np.int64))
                  for b, c in zip(boxes, classes, strict=True)]
        ignored = [(np.asarray(b, np.float32).reshape(-1, 4), np.asarray(c, np.int64))
                   for b, c in zip(crowd_boxes, crowd_classes, strict=True)]
        return cls(paths, names, labels=labels, sizes=sizes, ignored=ignored)

    # -- access -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._images)

    def image_path(self, i: int) -> Path:
        """The file of image ``i``."""
        return self._images[i]

    def load_image(self, i: int) -> np.ndarray:
        """Decode image ``i``: uint8 [H, W, 3], BGR (EXIF orientation applied, as OpenCV does).

        Raises:
            UserInputError: the file is missing or cannot be decoded.
        """
        path = self._images[i]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            reason = "does not exist" if not path.exists() else "cannot be decoded as an image"
            raise UserInputError(f"image {path} {reason}; fix or remove it from the dataset")
        self._sizes[i] = (image.shape[1], image.shape[0])
        return image

    def image_size(self, i: int) -> tuple[int, int]:
        """``(width, height)`` of image ``i``, from the header when it was never decoded."""
        size = self._sizes[i]
        if size is None:
            size = _header_size(self._images[i])
            self._sizes[i] = size
        return size

    def annotations(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The boxes of image ``i``.

        Returns:
            ``(boxes, class_ids)``: float32 [N, 4] ``xyxy`` in image pixels, clipped to the
            image, and int64 [N]. A background image gives N = 0.

        Raises:
            UserInputError: a malformed label file, or an unreadable image whose size is needed.
        """
        if self._pixel_labels is not None:
            boxes, classes = self._pixel_labels[i]
            return boxes.copy(), classes.copy()
        return self._to_pixels(i, *self._read_normalised(i))

    def ignored(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Regions of image ``i`` that evaluation counts neither as objects to find nor as
        false detections, as :meth:`annotations` gives boxes: COCO's crowd annotations, or a
        YOLO dataset's ``ignore/`` file (YOLO label format; ``detstream synth dataset``
        writes there the objects too hidden to be labelled). None: N = 0.

        Raises:
            UserInputError: a malformed ignore file.
        """
        if self._ignored is not None:
            boxes, classes = self._ignored[i]
            return boxes.copy(), classes.copy()
        path = label_path(self._images[i], "ignore")
        if self._label_files is None or not path.is_file():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        class_ids, cxcywh = read_labels(path, len(self.class_names))
        return self._to_pixels(i, cxcywh_to_xyxy(cxcywh), class_ids.astype(np.int64))

    def _to_pixels(self, i: int, normalised: np.ndarray, classes: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised ``xyxy`` boxes of image ``i`` → float32 pixels clipped to the image."""
        if len(classes) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        width, height = self.image_size(i)
        boxes = normalised.astype(np.float64) * (width, height, width, height)
        np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
        return boxes.astype(np.float32), classes.copy()

    def identities(self, i: int) -> np.ndarray | None:
        """The identity of each box of image ``i`` (int64 [N], rows as :meth:`annotations`),
        from the YOLO dataset's ``identities`` folder; None where the image has no identity
        file (COCO sources never do).

        Raises:
            UserInputError: a malformed identity file, or one whose rows do not match the
                label file's.
        """
        if self._label_files is None:
            return None
        _, classes = self._read_normalised(i)
        return read_identities(label_path(self._images[i], "identities"), len(classes))

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image ``i`` with its boxes: ``(image, boxes, class_ids)`` as :meth:`load_image` and
        :meth:`annotations` give them (the boxes use the decoded image's size)."""
        image = self.load_image(i)
        boxes, classes = self.annotations(i)
        return image, boxes, classes

    def _read_normalised(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        cached = self._normalised[i]
        if cached is None:
            files = self._label_files
            if files is None:
                raise RuntimeError("DetectionSource: no label files to read")
            class_ids, cxcywh = read_labels(files[i], len(self.class_names))
            cached = (cxcywh_to_xyxy(cxcywh), class_ids.astype(np.int64))
            self._normalised[i] = cached
        return cached


def _header_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file as OpenCV would decode it, read from its header."""
    try:
        from PIL import Image
    except ImportError:  # Pillow is optional (gradio brings it): decode the whole image instead
        pass
    else:
        try:
            with Image.open(path) as im:
                width, height = im.size
                orientation = im.getexif().get(0x0112, 1)
            if orientation in _EXIF_TRANSPOSED:
                width, height = height, width
            return int(width), int(height)
        except (OSError, SyntaxError, ValueError):
            pass  # let OpenCV try, and report the failure in one place
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        reason = "does not exist" if not path.exists() else "cannot be decoded as an image"
        raise UserInputError(f"image {path} {reason}; fix or remove it from the dataset")
    return image.shape[1], image.shape[0]
