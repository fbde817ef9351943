"""Torch datasets for training and validation, their collate function, and the DataLoader.

Items are ``(image, targets, meta)``:

- ``image``: torch.uint8 [3, S, S], **RGB**, channel first. The model contract is RGB scaled
  by 1/255 with mean 0 and std 1; the trainer does that scaling on the device.
- ``targets``: torch.float32 [n, 5], rows ``(class, x1, y1, x2, y2)`` in input pixels; a
  :class:`TrainDataset` built with ``identities=True`` adds a sixth column, the object's
  identity index (``-1`` unknown).
- ``meta``: a small dict (``path``, ``index``; validation items add ``letterbox``, ``boxes``,
  ``classes``: see :class:`ValDataset`).

:func:`collate` stacks them into ``(images [B, 3, S, S], targets [M, 6], metas)`` with target
rows ``(batch index, class, x1, y1, x2, y2)`` (and the identity last, [M, 7], with identities),
the layout :mod:`detstream.engines.train.loss` reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from detstream.engines.data import augment
from detstream.engines.data.detection import DetectionSource
from detstream.engines.errors import UserInputError
from detstream.engines.process.letterbox import letterbox

#: One dataset item: image uint8 [3, S, S] RGB, targets float32 [n, 5], meta.
Item = tuple[torch.Tensor, torch.Tensor, dict[str, Any]]
#: One batch: images uint8 [B, 3, S, S] RGB, targets float32 [M, 6], metas.
Batch = tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation strengths (defaults as Ultralytics' for detection).

    Attributes:
        mosaic: probability of a four-image mosaic (while mosaic is enabled).
        degrees: rotation range, +/- degrees.
        translate: translation range, +/- fraction of the input size.
        scale: scale range, the factor is in [1 - scale, 1 + scale].
        shear: shear range, +/- degrees.
        hsv_h: hue shift range, +/- fraction of a full turn.
        hsv_s: saturation gain range, +/- fraction.
        hsv_v: value (brightness) gain range, +/- fraction.
        fliplr: probability of a left-right flip.
    """

    mosaic: float = 1.0
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    fliplr: float = 0.5

    def __post_init__(self) -> None:
        limits = {"mosaic": (0.0, 1.0), "degrees": (0.0, 180.0), "translate": (0.0, 0.5),
                  "scale": (0.0, 0.99), "shear": (0.0, 45.0), "hsv_h": (0.0, 0.5),
                  "hsv_s": (0.0, 1.0), "hsv_v": (0.0, 1.0), "fliplr": (0.0, 1.0)}
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise UserInputError(f"augmentation '{name}' must be in [{low:g}, {high:g}], "
                                     f"got {value}")


def _to_item(image_bgr: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
             meta: dict[str, Any]) -> Item:
    """BGR HWC uint8 + boxes/classes → the item tuple (RGB CHW tensor, [n, 5] targets; with
    classes [n, 2] of ``(class, identity)``, [n, 6] targets ending in the identity)."""
    chw_rgb = np.ascontiguousarray(image_bgr[:, :, ::-1].transpose(2, 0, 1))
    labels = np.asarray(classes)
    labels = labels if labels.ndim == 2 else labels[:, None]
    targets = np.empty((len(boxes), 4 + labels.shape[1]), np.float32)
    targets[:, 0] = labels[:, 0]
    targets[:, 1:5] = boxes
    targets[:, 5:] = labels[:, 1:]
    return torch.from_numpy(chw_rgb), torch.from_numpy(targets), meta


def _check_size(size: int) -> int:
    if int(size) != size or size < 32:
        raise UserInputError(f"input size must be a whole number of pixels >= 32, got {size}")
    return int(size)


class TrainDataset(Dataset[Item]):
    """Augmented training items: mosaic or letterbox, then random affine, HSV jitter, flip.

    Randomness is drawn from a generator seeded with ``(seed, epoch, index)``: the same item of
    the same epoch is identical in every run and every worker layout, and differs between
    epochs. Call :meth:`set_epoch` before each epoch.

    ``epoch`` and ``mosaic_enabled`` live in shared memory, so a change made in the main process
    reaches DataLoader workers that already exist (persistent workers included), provided it is
    made before the epoch's iterator is created (``iter(loader)``, i.e. before the ``for``
    loop). Rebuilding the loader when switching mosaic off also works.

    Attributes:
        source: the images and labels.
        size: S, the square input size.
        augment: augmentation strengths.
        seed: augmentation seed.
        pad_value: value of padding pixels.
        identities: give every target its object's identity index (a sixth column), for
            training an embedding head; the dataset needs identity files.
        num_identities: the number of distinct identities (0 without ``identities``).
    """

    def __init__(self, source: DetectionSource, size: int,
                 augment: AugmentConfig | None = None, seed: int = 0,
                 pad_value: int = 114, identities: bool = False) -> None:
        if len(source) == 0:
            raise UserInputError("the training dataset has no images")
        self.source = source
        self.size = _check_size(size)
        self.augment = augment if augment is not None else AugmentConfig()
        self.seed = int(seed)
        self.pad_value = int(pad_value)
        self._identities = _index_identities(source) if identities else None
        self.num_identities = 0 if self._identities is None else len(self._identities[1])
        self._sightings = (_shared_objects(self._identities[0])
                           if self._identities is not None else None)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._mosaic = torch.ones(1, dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return len(self.source)

    @property
    def epoch(self) -> int:
        """The epoch whose randomness items use."""
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Use the randomness of ``epoch`` from now on (in every worker)."""
        self._epoch[0] = int(epoch)

    @property
    def mosaic_enabled(self) -> bool:
        """Whether items may be mosaics (the trainer turns this off for the last epochs)."""
        return bool(self._mosaic[0])

    @mosaic_enabled.setter
    def mosaic_enabled(self, value: bool) -> None:
        self._mosaic[0] = bool(value)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index`` in the current epoch."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))

    def __getitem__(self, index: int) -> Item:
        index = int(index)
        rng = self.rng(index)
        cfg, s = self.augment, self.size
        mosaic = self.mosaic_enabled and rng.random() < cfg.mosaic
        if mosaic:
            n = len(self.source)
            others = rng.integers(0, max(n - 1, 1), size=3)
            if n > 1:
                others += others >= index  # any image but this one
            if self._sightings is not None and len(self._sightings[index]):
                # Other frames of the same objects: each mosaic then holds several sightings
                # of an object, and its neighbours, for the embedding's contrastive term.
                others = rng.choice(self._sightings[index], size=3)
            samples = [self._sample(int(i)) for i in (index, *others.tolist())]
            image, boxes, classes = augment.mosaic4(samples, s, rng, self.pad_value)
        else:
            image, boxes, classes = self._sample(index)
            image, info = letterbox(image, (s, s), self.pad_value)
            boxes = info.to_input(boxes)
        image, boxes, classes = augment.random_affine(
            image, boxes, classes, s, rng, degrees=cfg.degrees, translate=cfg.translate,
            scale=cfg.scale, shear=cfg.shear, pad_value=self.pad_value)
        image = augment.hsv_jitter(image, cfg.hsv_h, cfg.hsv_s, cfg.hsv_v, rng)
        image, boxes = augment.horizontal_flip(image, boxes, rng, cfg.fliplr)
        meta = {"path": str(self.source.image_path(index)), "index": index, "mosaic": mosaic}
        return _to_item(image, boxes, classes, meta)


    def _sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(image, boxes, labels)``: labels are the class ids, or ``(class, identity
        index)`` rows [N, 2] when training identities."""
        image, boxes, classes = self.source.sample(index)
        if self._identities is None:
            return image, boxes, classes
        per_image, _ = self._identities
        return image, boxes, np.stack([classes, per_image[index]], axis=1)


def _index_identities(source: DetectionSource) -> tuple[list[np.ndarray], np.ndarray]:
    """Every image's identity indices (0..K-1, -1 where unknown) and the K identity values.

    Raises:
        UserInputError: no image of ``source`` has an identity file.
    """
    raw = [source.identities(i) for i in range(len(source))]
    known = [ids for ids in raw if ids is not None]
    if not known:
        raise UserInputError("the training images have no identity files (an 'identities' "
                             "folder beside 'labels'); write the dataset with 'detstream synth "
                             "dataset', or train without --embed-dim")
    values = np.unique(np.concatenate(known))
    per_image = []
    for i, ids in enumerate(raw):
        if ids is None:
            per_image.append(np.full(len(source.annotations(i)[1]), -1, np.int64))
        else:
            per_image.append(np.searchsorted(values, ids).astype(np.int64))
    return per_image, values


def _shared_objects(per_image: list[np.ndarray]) -> list[np.ndarray]:
    """For each image, the other images that show at least one of its identities."""
    images_of: dict[int, list[int]] = {}
    for i, ids in enumerate(per_image):
        for ident in set(ids[ids >= 0].tolist()):
            images_of.setdefault(ident, []).append(i)
    shared = []
    for i, ids in enumerate(per_image):
        found = {j for ident in set(ids[ids >= 0].tolist()) for j in images_of[ident]}
        found.discard(i)
        shared.append(np.array(sorted(found), np.int64))
    return shared


class ValDataset(Dataset[Item]):
    """Letterboxed validation items with what is needed to score them in frame pixels.

    Each image is resized to fit S x S keeping its aspect ratio and centred on padding
    (:func:`detstream.engines.process.letterbox.letterbox`), as at inference time.

    ``meta`` holds ``path`` (str), ``index`` (int), ``letterbox``
    (:class:`~detstream.engines.process.letterbox.Letterbox`, maps input boxes back with
    ``to_frame``),
    ``boxes`` (float32 [N, 4] ``xyxy`` original-frame pixels) and ``classes`` (int64 [N]).

    Attributes:
        source: the images and labels.
        size: S, the square input size.
        pad_value: value of padding pixels.
        align: where the image sits in the padding, ``center`` or ``topleft``.
    """

    def __init__(self, source: DetectionSource, size: int, pad_value: int = 114,
                 align: str = "center") -> None:
        if len(source) == 0:
            raise UserInputError("the validation dataset has no images")
        self.source = source
        self.size = _check_size(size)
        self.pad_value = int(pad_value)
        self.align = align

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Item:
        index = int(index)
        image, boxes, classes = self.source.sample(index)
        padded, info = letterbox(image, (self.size, self.size), self.pad_value, self.align)
        meta = {"path": str(self.source.image_path(index)), "index": index, "letterbox": info,
                "boxes": boxes, "classes": classes}
        return _to_item(padded, info.to_input(boxes), classes, meta)


def collate(batch: list[Item]) -> Batch:
    """Stack items into a batch.

    Returns:
        ``(images, targets, metas)``: uint8 [B, 3, S, S] RGB; float32 [M, 6] rows
        ``(batch index, class, x1, y1, x2, y2)`` in input pixels; the B metas in order.
    """
    images = torch.stack([item[0] for item in batch])
    rows = []
    for k, (_, targets, _) in enumerate(batch):
        column = torch.full((len(targets), 1), float(k), dtype=torch.float32)
        rows.append(torch.cat([column, targets], dim=1))
    targets = torch.cat(rows) if rows else torch.zeros((0, 6), dtype=torch.float32)
    return images, targets, [item[2] for item in batch]


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed global RNGs from the worker's torch seed.

    Augmentations draw only from their own seeded generators; this covers any other code.
    OpenCV's thread count is deliberately left alone: calling ``cv2.setNumThreads`` in a forked
    worker deadlocks once the parent process has used OpenCV's thread pool (seen with
    opencv-python 5.0 whenever the main process letterboxed or resized anything first).
    """
    del worker_id
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_loader(dataset: Dataset[Item], batch_size: int, workers: int, shuffle: bool,
                 distributed: bool = False, seed: int = 0) -> DataLoader[Item]:
    """A DataLoader over ``dataset`` yielding :func:`collate` batches.

    The sampler is always a :class:`~torch.utils.data.DistributedSampler` (one replica when not
    distributed), so the order depends only on ``(seed, epoch)``: call
    ``loader.sampler.set_epoch(epoch)`` each epoch, and a resumed run sees the same order as an
    uninterrupted one. Under DDP each process reads its own share; note that the sampler pads
    the last share with repeated images so all processes get the same count.

    Args:
        dataset: a :class:`TrainDataset`, :class:`ValDataset` or any dataset of items.
        batch_size: images per batch (per process under DDP).
        workers: loader processes (0 loads in the calling process); persistent when > 0.
        shuffle: shuffle the order each epoch.
        distributed: split the data over the ``torch.distributed`` process group.
        seed: seed of the shuffling and of the workers' global RNGs.

    Raises:
        UserInputError: a batch size below 1, negative workers, or ``distributed`` without an
            initialised process group.
    """
    if batch_size < 1:
        raise UserInputError(f"batch size must be at least 1, got {batch_size}")
    if workers < 0:
        raise UserInputError(f"workers must be 0 or more, got {workers}")
    sampler: DistributedSampler[Item]
    if distributed:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            raise UserInputError("distributed loading needs torch.distributed initialised "
                                 "(launch with torchrun)")
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
    else:
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        drop_last=False,
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker if workers > 0 else None,
        generator=generator,
    )
