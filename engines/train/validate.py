"""Score a model on a dataset split (used by the trainer and ``detstream val``).

Validation runs the model the way ``detstream run`` does: a DataLoader only reads and decodes
the images (in worker processes when asked), and the
:class:`~detstream.engines.predict.Predictor` letterboxes, normalises, infers, decodes and
applies NMS with the model's own contract on the backend's device. The boxes it returns are in
frame pixels and are scored against the labels by
:class:`~detstream.engines.metrics.coco.DetectionEvaluator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from detstream.engines.data.detection import DetectionSource
from detstream.engines.errors import UserInputError
from detstream.engines.metrics.coco import DetectionEvaluator, EvalResult
from detstream.engines.predict import Predictor
from detstream.engines.progress import progress_bar
from detstream.engines.runtime.base import Backend
from detstream.engines.spec import Detections, ModelSpec


@dataclass(frozen=True)
class LabelledImage:
    """One image in memory with what is in it (for :func:`evaluate_images`).

    Attributes:
        image: uint8 [H, W, 3] BGR.
        boxes: float32 [N, 4] ``xyxy`` frame pixels of the objects to find.
        class_ids: int [N].
        ignore_boxes, ignore_ids: regions that count neither way (float32 [M, 4], int [M]).
    """

    image: np.ndarray
    boxes: np.ndarray
    class_ids: np.ndarray
    ignore_boxes: np.ndarray
    ignore_ids: np.ndarray


#: One image as the loader gives it: ``(image, boxes, class_ids, ignored, index)``.
Frame = tuple[torch.Tensor, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], int]


class FrameDataset(Dataset[Frame]):
    """A split's images as decoded frames, with their labels.

    Items are ``(image, boxes, class_ids, ignored, index)``: uint8 [H, W, 3] BGR as a tensor
    (so that worker processes hand it over in shared memory instead of a pickled copy), float32
    [N, 4] ``xyxy`` frame pixels, int64 [N], the regions to ignore as ``(boxes, class_ids)``
    (:meth:`DetectionSource.ignored`), and the image's index in ``source``.
    """

    def __init__(self, source: DetectionSource) -> None:
        if len(source) == 0:
            raise UserInputError("the validation dataset has no images")
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Frame:
        image, boxes, class_ids = self.source.sample(int(index))
        return (torch.from_numpy(np.ascontiguousarray(image)), boxes, class_ids,
                self.source.ignored(int(index)), int(index))


def _as_list(items: list[Frame]) -> list[Frame]:
    """Collate: frames differ in size, so a batch stays a list."""
    return items


def evaluate(backend: Backend, source: DetectionSource, batch: int = 16, workers: int = 0,
             conf: float = 0.001, iou: float = 0.65, max_det: int = 300,
             progress: bool = False) -> EvalResult:
    """Score ``backend``'s model on every image of ``source``.

    Args:
        backend: the model, run through a :class:`Predictor` exactly as ``detstream run``
            runs it (preprocessing per ``backend.spec``, then decode and NMS).
        source: images and ground truth; predictions are matched to it by class id and
            reported with its class names. Its ignored regions (crowds, objects too hidden
            to be labelled) count neither way.
        batch: images per loader batch (the predictor splits it to ``backend.max_batch``).
        workers: processes reading and decoding images (0 reads in this one).
        conf, iou, max_det: post-processing (low ``conf`` for a full precision-recall curve).
        progress: show a progress bar.

    Raises:
        UserInputError: no images, or class ids outside the dataset's classes.
    """
    predictor = Predictor(backend, conf=conf, iou=iou, max_det=max_det)
    names = tuple(source.class_names)
    evaluator = DetectionEvaluator(names)
    loader = DataLoader(FrameDataset(source), batch_size=batch, shuffle=False,
                        num_workers=workers, collate_fn=_as_list)
    for frames in progress_bar(loader, disable=not progress, desc="val", unit="batch",
                               leave=False):
        _score_batch(predictor, evaluator, frames)
    return evaluator.compute()


def evaluate_images(backend: Backend, images: Sequence[LabelledImage],
                    class_names: Sequence[str], batch: int = 8, conf: float = 0.001,
                    iou: float = 0.65, max_det: int = 300) -> EvalResult:
    """Score ``backend``'s model on images already in memory, as :func:`evaluate` scores a
    dataset split (the same predictor, thresholds and COCO evaluation).

    Args:
        backend: the model.
        images: uint8 BGR images with their boxes, class ids and ignored regions.
        class_names: the names the labels' class ids index (reported with these).
        batch, conf, iou, max_det: as :func:`evaluate`.

    Raises:
        UserInputError: no images, or class ids outside ``class_names``.
    """
    if not images:
        raise UserInputError("no images to evaluate on")
    predictor = Predictor(backend, conf=conf, iou=iou, max_det=max_det)
    evaluator = DetectionEvaluator(tuple(class_names))
    frames = [(torch.from_numpy(np.ascontiguousarray(item.image)), item.boxes, item.class_ids,
               (item.ignore_boxes, item.ignore_ids), index)
              for index, item in enumerate(images)]
    for start in range(0, len(frames), batch):
        _score_batch(predictor, evaluator, frames[start:start + batch])
    return evaluator.compute()


def _score_batch(predictor: Predictor, evaluator: DetectionEvaluator,
                 frames: Sequence[Frame]) -> None:
    """Predict on one batch of frames and add each with its labels to ``evaluator``."""
    names = evaluator.class_names
    found = predictor([image.numpy() for image, *_ in frames])
    for (_, boxes, class_ids, (ignore_boxes, ignore_ids), index), pred in zip(
            frames, found, strict=True):
        gt = Detections(boxes=boxes, scores=np.ones(len(boxes)), class_ids=class_ids,
                        class_names=names)
        ignore = Detections(boxes=ignore_boxes, scores=np.ones(len(ignore_boxes)),
                            class_ids=ignore_ids, class_names=names)
        if pred.class_names != names:  # the dataset's spelling of the model's classes
            pred = pred.replace(class_names=names)
        evaluator.add(gt, pred, image_id=index, ignore=ignore)


class ModuleBackend(Backend):
    """A torch module run as it is, in FP32 on ``device``: the trainer's EMA model, validated
    each epoch in place. (:class:`~detstream.engines.runtime.torch_backend.TorchBackend`
    folds batch norms into the convolutions, which would need a fresh copy of the model every
    epoch; copying and folding cost more than validating a small split.)

    Args:
        model: takes the preprocessed float32 [B, 3, H, W] batch and returns the raw output of
            ``spec.layout``; it is put in eval mode.
        spec: its contract (input size, preprocessing, layout, class names).
        device: where the model is.
    """

    name = "torch"

    def __init__(self, model: nn.Module, spec: ModelSpec, device: str | torch.device) -> None:
        self.model = model.eval()
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.max_batch = 256

    @torch.no_grad()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(batch.to(self.device, self.dtype))
