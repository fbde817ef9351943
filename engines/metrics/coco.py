"""COCO-standard detection evaluation (mAP50, mAP50-95) plus precision, recall and F1.

:class:`DetectionEvaluator` collects ground truth and predictions image by image, then
:meth:`~DetectionEvaluator.compute` hands them to ``faster-coco-eval`` (a C++ reimplementation
of ``pycocotools``' COCOeval that reproduces its numbers) in memory, with no temporary files.

What is reported, and how:

* **mAP50-95 / mAP50**: COCO's average precision, 101-point interpolated recall, IoU thresholds
  0.50:0.05:0.95 (a detection matches at IoU ``>=`` the threshold), area range ``all``, at most
  ``max_det`` detections per image and class (COCO's standard 100 by default; Ultralytics'
  validation keeps up to 300). Read per class from COCOeval's ``precision`` array
  ``[T, R, K, A, M]``; classes without ground truth get ``nan`` and are left out of the mean,
  as COCO does (their detections are then not counted anywhere).
* **P / R / F1**: at IoU 0.50, at the single confidence threshold that maximises the mean F1
  over classes with ground truth (how Ultralytics reports P and R). True/false positive flags
  come from COCOeval's own greedy matching, in a second pass limited to IoU 0.50 and taking
  every detection (no ``max_det`` cap); the headline F1 is the maximised mean F1.
* **Ignored regions** (COCO's crowds; objects too hidden to be labelled): a detection that
  matches one and no labelled box counts neither as a true nor as a false positive, and the
  regions are not objects to find. They go to COCOeval as ``iscrowd`` boxes, so AP treats
  them exactly as COCO does (a detection matches a region when the share of the detection
  inside it reaches the IoU threshold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster

from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections

#: Per-class metric names, in table order.
CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "map50", "map50_95")

_NAN = float("nan")
_AREA_ALL = [0.0, 1e10]


@dataclass(frozen=True)
class EvalResult:
    """The outcome of an evaluation; every rate is in [0, 1], ``nan`` when undefined.

    Attributes:
        precision, recall, f1: means over classes with ground truth, at IoU 0.50 and the
            confidence threshold maximising the mean F1.
        map50: COCO AP at IoU 0.50, mean over classes with ground truth.
        map50_95: COCO AP averaged over IoU 0.50:0.05:0.95, mean over classes with ground truth.
        images: number of images evaluated, with or without ground truth.
        per_class: class name → ``precision``, ``recall``, ``f1``, ``map50``, ``map50_95``
            (floats) and ``instances`` (ground-truth boxes) and ``images`` (images holding
            at least one such box).
    """

    precision: float
    recall: float
    f1: float
    map50: float
    map50_95: float
    images: int
    per_class: dict[str, dict[str, float | int]]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data with exactly the keys ``precision``, ``recall``, ``f1``, ``map50``,
        ``map50_95``, ``images`` and ``per_class``; ``nan`` becomes ``None`` (null)."""
        return {
            "precision": _json_number(self.precision),
            "recall": _json_number(self.recall),
            "f1": _json_number(self.f1),
            "map50": _json_number(self.map50),
            "map50_95": _json_number(self.map50_95),
            "images": self.images,
            "per_class": {name: {key: _json_number(value) for key, value in row.items()}
                          for name, row in self.per_class.items()},
        }

    def table(self) -> str:
        """A per-class table like Ultralytics' validation output, the ``all`` row first."""
        header = ("Class", "Images", "Instances", "P", "R", "F1", "mAP50", "mAP50-95")
        instances = sum(int(row["instances"]) for row in self.per_class.values())
        overall = (self.precision, self.recall, self.f1, self.map50, self.map50_95)
        lines = [_table_row(header), _table_row(("all", self.images, instances, *overall))]
        for name, row in self.per_class.items():
            values = [row[key] for key in CLASS_METRICS]
            lines.append(_table_row((name, int(row["images"]), int(row["instances"]), *values)))
        return "\n".join(lines)


@dataclass(frozen=True)
class _Image:
    """One evaluated image: its id, ground truth and predictions."""

    image_id: int
    gt: Detections
    pred: Detections
    ignore: Detections | None = None


class DetectionEvaluator:
    """Collects ground truth and predictions per image and computes COCO-standard metrics.

    Example::

        evaluator = DetectionEvaluator(spec.class_names)
        for gt, pred in pairs:
            evaluator.add(gt, pred)
        print(evaluator.compute().table())
    """

    def __init__(self, class_names: Sequence[str], max_det: int = 100) -> None:
        """Args:
            class_names: names indexed by class id; ground truth and predictions use these ids.
            max_det: detections per image and class that count towards mAP (COCO: 100).

        Raises:
            UserInputError: no classes, repeated names, or ``max_det < 1``.
        """
        names = tuple(str(name) for name in class_names)
        if not names:
            raise UserInputError("DetectionEvaluator needs at least one class name")
        if len(set(names)) != len(names):
            raise UserInputError(f"DetectionEvaluator: class names must be unique, got {names}")
        if max_det < 1:
            raise UserInputError(f"DetectionEvaluator: max_det must be at least 1, got {max_det}")
        self.class_names = names
        self.max_det = int(max_det)
        self._images: list[_Image] = []
        self._ids: set[int] = set()

    def __len__(self) -> int:
        """Number of images added so far."""
        return len(self._images)

    def add(self, gt: Detections, pred: Detections, image_id: int | None = None,
            ignore: Detections | None = None) -> int:
        """Add one image.

        Args:
            gt: ground truth, float32 [G, 4] ``xyxy`` boxes in frame pixels (scores ignored).
            pred: predictions, float32 [P, 4] ``xyxy`` boxes in the same frame, with scores.
            image_id: a unique id; ``None`` takes the next free one (largest so far + 1).
            ignore: regions, with class ids, where a detection of that class counts neither
                way (crowds; objects too hidden to be labelled); none when ``None``.

        Returns:
            The image id used.

        Raises:
            UserInputError: a repeated ``image_id``, a class id outside ``class_names``, or
                records whose (non-empty) ``class_names`` differ from the evaluator's.
        """
        if image_id is None:
            image_id = max(self._ids, default=0) + 1
        image_id = int(image_id)
        if image_id in self._ids:
            raise UserInputError(f"DetectionEvaluator.add: image id {image_id} was already added")
        for role, record in (("gt", gt), ("pred", pred), ("ignore", ignore)):
            if record is not None:
                self._check_record(role, record)
        self._images.append(_Image(image_id, gt, pred, ignore))
        self._ids.add(image_id)
        return image_id

    def compute(self) -> EvalResult:
        """Evaluate every image added so far (they stay added).

        Returns:
            The metrics; all ``nan`` (with ``images`` counted) when no ground truth exists.
        """
        num_classes = len(self.class_names)
        instances, images_with = self._class_counts()
        ap = np.full((num_classes, 2), _NAN)
        prf = np.full((num_classes, 3), _NAN)
        if instances.any():
            gt_coco, dt_coco = self._coco_pair()
            ap = _average_precision(gt_coco, dt_coco, self.max_det)
            prf[instances > 0] = self._precision_recall_f1(gt_coco, dt_coco, instances)
        per_class = {
            name: {
                "precision": float(prf[k, 0]), "recall": float(prf[k, 1]),
                "f1": float(prf[k, 2]), "map50": float(ap[k, 0]), "map50_95": float(ap[k, 1]),
                "instances": int(instances[k]), "images": int(images_with[k]),
            }
            for k, name in enumerate(self.class_names)
        }
        overall = _nanmean_rows(np.concatenate((prf, ap), axis=1))
        return EvalResult(
            precision=overall[0], recall=overall[1], f1=overall[2],
            map50=overall[3], map50_95=overall[4],
            images=len(self._images), per_class=per_class,
        )

    def _check_record(self, role: str, record: Detections) -> None:
        """Raise when ``record``'s classes do not fit this evaluator."""
        if record.class_names and tuple(record.class_names) != self.class_names:
            raise UserInputError(
                f"DetectionEvaluator.add: {role} class names {record.class_names} differ from "
                f"the evaluator's {self.class_names}")
        ids, last = record.class_ids, len(self.class_names) - 1
        if len(ids) and (ids.min() < 0 or ids.max() > last):
            raise UserInputError(
                f"DetectionEvaluator.add: {role} class ids must be in 0..{last}, "
                f"got {sorted(set(ids.tolist()))}")

    def _class_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth boxes per class and images holding each class: two int64 [K]."""
        num_classes = len(self.class_names)
        instances = np.zeros(num_classes, np.int64)
        images_with = np.zeros(num_classes, np.int64)
        for image in self._images:
            counts = np.bincount(image.gt.class_ids, minlength=num_classes)
            instances += counts
            images_with += counts > 0
        return instances, images_with

    def _coco_pair(self) -> tuple[COCO, COCO]:
        """Ground truth and predictions as in-memory COCO datasets (category id = class id + 1)."""
        images = [{"id": image.image_id} for image in self._images]
        categories = [{"id": k + 1, "name": name} for k, name in enumerate(self.class_names)]
        gt_anns = _annotations([(image.image_id, image.gt) for image in self._images],
                              with_scores=False)
        crowds = _annotations([(image.image_id, image.ignore) for image in self._images
                               if image.ignore is not None], with_scores=False, crowd=True)
        for ann in crowds:
            ann["id"] += len(gt_anns)
        gt_anns += crowds
        dt_anns = _annotations([(image.image_id, image.pred) for image in self._images],
                              with_scores=True)
        return _coco(images, categories, gt_anns), _coco(images, categories, dt_anns)

    def _precision_recall_f1(self, gt: COCO, dt: COCO, instances: np.ndarray) -> np.ndarray:
        """P, R, F1 at IoU 0.50 and the best mean-F1 threshold: float64 [K', 3].

        Rows are the K' classes with ground truth (``instances > 0``), in class order. The
        candidate thresholds are the distinct prediction scores (exact, no grid); ties go to
        the lowest (most inclusive). A class with no prediction at or above the threshold has
        precision 0. Memory stays O(predictions): the mean F1 is summed class by class.
        """
        has_gt = np.flatnonzero(instances > 0)
        scores, class_ids, is_tp = self._match_at_iou50(gt, dt)
        thresholds = np.unique(scores)
        if len(thresholds) == 0:
            return np.zeros((len(has_gt), 3))
        classes = [(scores[class_ids == k], is_tp[class_ids == k], instances[k]) for k in has_gt]
        f1_sum = np.zeros(len(thresholds))
        for class_scores, class_tp, n_gt in classes:
            f1_sum += _f1(*_precision_recall(class_scores, class_tp, n_gt, thresholds))
        best = thresholds[[int(np.argmax(f1_sum))]]
        rows = [_precision_recall(class_scores, class_tp, n_gt, best)
                for class_scores, class_tp, n_gt in classes]
        precision = np.concatenate([row[0] for row in rows])
        recall = np.concatenate([row[1] for row in rows])
        return np.stack((precision, recall, _f1(precision, recall)), axis=1)

    def _match_at_iou50(self, gt: COCO, dt: COCO) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every prediction's score, class id and TP flag at IoU 0.50: [D] arrays.

        The flags are COCOeval's own greedy matching (highest score first, each ground-truth
        box matched at most once), from a pass restricted to IoU 0.50, area ``all`` and a
        detection cap no image reaches. Its ``eval["matched"]`` maps ``"<dt id>_<gt id>"`` to
        the IoU; over several IoU thresholds it would hold the union of their matches.
        Detections it matched to an ignored region (a crowd) are left out.
        """
        most = max(len(image.pred) for image in self._images)
        evaluator = _run_cocoeval(gt, dt, iou_thresholds=[0.5], max_det=max(1, most))
        crowd = {ann["id"] for ann in gt.dataset["annotations"] if ann["iscrowd"]}
        pairs = [tuple(int(v) for v in key.split("_", 1)) for key in evaluator.eval["matched"]]
        matched_ids = {d for d, g in pairs if g not in crowd}
        ignored_ids = {d for d, g in pairs if g in crowd}
        anns = [ann for ann in dt.dataset["annotations"] if ann["id"] not in ignored_ids]
        scores = np.array([ann["score"] for ann in anns], np.float64)
        class_ids = np.array([ann["category_id"] - 1 for ann in anns], np.int64)
        is_tp = np.array([ann["id"] in matched_ids for ann in anns], bool)
        return scores, class_ids, is_tp


def _annotations(records: Sequence[tuple[int, Detections]],
                 with_scores: bool, crowd: bool = False) -> list[dict[str, Any]]:
    """COCO annotation dicts (``bbox`` as xywh, ids from 1) for ``(image_id, record)`` pairs;
    ``crowd`` marks them ``iscrowd`` (regions to ignore)."""
    anns: list[dict[str, Any]] = []
    for image_id, record in records:
        xywh = record.xywh.astype(np.float64)
        for box, class_id, score in zip(xywh.tolist(), record.class_ids.tolist(),
                                        record.scores.tolist(), strict=True):
            ann = {"id": len(anns) + 1, "image_id": image_id, "category_id": class_id + 1,
                   "bbox": box, "area": box[2] * box[3], "iscrowd": int(crowd)}
            if with_scores:
                ann["score"] = score
            anns.append(ann)
    return anns


def _coco(images: list[dict[str, Any]], categories: list[dict[str, Any]],
          annotations: list[dict[str, Any]]) -> COCO:
    """An indexed in-memory COCO dataset."""
    coco = COCO()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    coco.createIndex()
    return coco


def _run_cocoeval(gt: COCO, dt: COCO, iou_thresholds: Sequence[float] | None,
                  max_det: int) -> COCOeval_faster:
    """Run COCOeval (bbox, area ``all`` only, one detection cap) through ``accumulate``."""
    evaluator = COCOeval_faster(gt, dt, "bbox")
    params = evaluator.params
    params.areaRng = [_AREA_ALL]
    params.areaRngLbl = ["all"]
    params.maxDets = [max_det]
    if iou_thresholds is not None:
        params.iouThrs = np.asarray(iou_thresholds, np.float64)
    evaluator.evaluate()
    evaluator.accumulate()
    return evaluator


def _average_precision(gt: COCO, dt: COCO, max_det: int) -> np.ndarray:
    """Per-class AP50 and AP50-95 from COCOeval's ``precision`` array: float64 [K, 2].

    ``precision`` is [T, R, K, A, M] (IoU thresholds, 101 recall points, classes, area
    ranges, detection caps) with ``-1`` where a class has no ground truth (→ ``nan``).
    """
    evaluator = _run_cocoeval(gt, dt, iou_thresholds=None, max_det=max_det)
    precision = np.asarray(evaluator.eval["precision"])[:, :, :, 0, -1]
    iou50 = int(np.flatnonzero(np.isclose(evaluator.params.iouThrs, 0.5))[0])
    out = np.full((precision.shape[2], 2), _NAN)
    for k in range(precision.shape[2]):
        curve = precision[:, :, k]
        if (curve > -1).all():
            out[k] = (curve[iou50].mean(), curve.mean())
    return out


def _precision_recall(scores: np.ndarray, is_tp: np.ndarray, n_gt: int,
                      thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One class's precision and recall keeping scores ``>=`` each threshold: two float64 [S].

    Args:
        scores: float [D] the class's prediction scores.
        is_tp: bool [D] whether each matched a ground-truth box.
        n_gt: the class's ground-truth boxes (> 0).
        thresholds: float [S] confidence thresholds.
    """
    order = np.argsort(-scores, kind="stable")
    cum_tp = np.concatenate(([0], np.cumsum(is_tp[order])))
    kept = np.searchsorted(-scores[order], -thresholds, side="right")
    tp = cum_tp[kept].astype(np.float64)
    precision = np.divide(tp, kept, out=np.zeros(len(tp)), where=kept > 0)
    return precision, tp / n_gt


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """Harmonic mean of same-shaped arrays, 0 where both are 0."""
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros(total.shape), where=total > 0)


def _nanmean_rows(values: np.ndarray) -> list[float]:
    """Column means over rows that are not ``nan`` (``nan`` when every row is)."""
    means = []
    for column in values.T:
        valid = column[~np.isnan(column)]
        means.append(float(valid.mean()) if len(valid) else _NAN)
    return means


def _json_number(value: float | int) -> float | int | None:
    """``value`` as a plain Python number, ``None`` for ``nan``."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value


def _table_row(cells: Sequence[Any]) -> str:
    """One table line: a wide name column, then right-aligned numbers (``-`` for ``nan``)."""
    text = []
    for cell in cells:
        if isinstance(cell, float):
            text.append("-" if math.isnan(cell) else f"{cell:.3f}")
        else:
            text.append(str(cell))
    return f"{text[0]:>22}" + "".join(f"{cell:>11}" for cell in text[1:])
