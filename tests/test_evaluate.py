"""COCO-standard evaluation against answers worked out by hand.

COCO's AP is the mean, over 101 recall points r = 0, 0.01, ..., 1, of the best precision at
recall >= r (0 beyond the highest recall reached); mAP50-95 averages it over the IoU thresholds
0.50, 0.55, ..., 0.95, and a detection matches at IoU >= the threshold.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detstream.engines.errors import UserInputError
from detstream.engines.metrics.coco import DetectionEvaluator, EvalResult
from detstream.engines.spec import Detections

NAMES = ("car", "person", "bike")


def record(boxes: list[list[float]], class_ids: list[int],
           scores: list[float] | None = None) -> Detections:
    """Detections from ``xyxy`` boxes; scores default to 0.9, 0.8, ... in order."""
    if scores is None:
        scores = [0.9 - 0.1 * i for i in range(len(boxes))]
    return Detections(boxes=np.array(boxes, np.float32).reshape(-1, 4),
                      scores=np.array(scores, np.float32),
                      class_ids=np.array(class_ids, np.int32))


def grid(count: int, size: float = 100.0) -> list[list[float]]:
    """``count`` disjoint ``size`` x ``size`` boxes in a row, 200 px apart."""
    return [[200.0 * i, 0.0, 200.0 * i + size, size] for i in range(count)]


def evaluate(pairs: list[tuple[Detections, Detections]], **kwargs: int) -> EvalResult:
    evaluator = DetectionEvaluator(NAMES, **kwargs)
    for gt, pred in pairs:
        evaluator.add(gt, pred)
    return evaluator.compute()


def metrics(result: EvalResult) -> list[float]:
    return [result.precision, result.recall, result.f1, result.map50, result.map50_95]


def test_perfect_predictions_score_one() -> None:
    gt = record(grid(3), [0, 1, 0])
    result = evaluate([(gt, gt), (record(grid(1), [1]), record(grid(1), [1]))])
    assert metrics(result) == pytest.approx([1.0] * 5)
    assert result.images == 2
    assert result.per_class["car"]["instances"] == 2 and result.per_class["person"]["images"] == 2


def test_iou_of_exactly_0_6_passes_the_thresholds_0_50_to_0_60() -> None:
    # 100x100 boxes shifted 25 px: IoU = 75*100 / (125*100) = 0.6 exactly (also in float64,
    # as is COCO's threshold 0.60), and COCO matches at IoU >= threshold, so 3 of the 10
    # thresholds see AP 1 and 7 see AP 0: mAP50-95 = 3/10.
    gt = record(grid(4), [0, 0, 1, 1])
    pred = record([[x1 + 25, y1, x2 + 25, y2] for x1, y1, x2, y2 in grid(4)], [0, 0, 1, 1])
    result = evaluate([(gt, pred)])
    assert result.map50 == pytest.approx(1.0)
    assert result.map50_95 == pytest.approx(0.3)
    assert [result.precision, result.recall, result.f1] == pytest.approx([1.0, 1.0, 1.0])


def test_half_the_objects_missed() -> None:
    # Precision 1 up to recall 0.5, then nothing: 51 of 101 recall points (0.00..0.50) score 1.
    gt = record(grid(4), [0, 0, 0, 0])
    result = evaluate([(gt, gt[:2])])
    assert result.recall == pytest.approx(0.5)
    assert result.precision == pytest.approx(1.0)
    assert result.f1 == pytest.approx(2 / 3)
    assert result.map50 == pytest.approx(51 / 101)
    assert result.map50_95 == pytest.approx(51 / 101)


def test_false_positive_above_every_true_positive() -> None:
    # Ranked FP, TP, TP: precision 0, 1/2, 2/3 at recall 0, 1/2, 1; the best precision at
    # recall >= r is 2/3 for every r, so AP = 2/3 (1/3 below the perfect 1).
    # P/R: at threshold 0.7 all three are kept: P = 2/3, R = 1, F1 = 0.8 (the best).
    gt = record(grid(2), [0, 0])
    pred = record([[1000, 1000, 1100, 1100], *grid(2)], [0, 0, 0], [0.9, 0.8, 0.7])
    result = evaluate([(gt, pred)])
    assert result.map50 == pytest.approx(2 / 3)
    assert result.map50_95 == pytest.approx(2 / 3)
    assert [result.precision, result.recall, result.f1] == pytest.approx([2 / 3, 1.0, 0.8])


def test_false_positive_between_true_positives() -> None:
    # Ranked TP, FP, TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1. Interpolated precision
    # is 1 for r <= 0.50 (51 points) and 2/3 for r in 0.51..1.00 (50 points).
    gt = record(grid(2), [0, 0])
    pred = record([grid(2)[0], [1000, 1000, 1100, 1100], grid(2)[1]], [0, 0, 0], [0.9, 0.8, 0.7])
    result = evaluate([(gt, pred)])
    assert result.map50 == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert [result.precision, result.recall, result.f1] == pytest.approx([2 / 3, 1.0, 0.8])


def test_detection_of_an_ignored_region_counts_neither_way() -> None:
    # The FP-above-every-TP case, with the false box lying on a region to ignore (an object
    # too hidden to be labelled): it no longer costs precision, and the region is no object
    # to find (recall stays 1). A region of another class ignores nothing of this class.
    gt = record(grid(2), [0, 0])
    hidden = [1000, 1000, 1100, 1100]
    pred = record([hidden, *grid(2)], [0, 0, 0], [0.9, 0.8, 0.7])
    evaluator = DetectionEvaluator(NAMES)
    evaluator.add(gt, pred, ignore=record([hidden], [0]))
    result = evaluator.compute()
    assert metrics(result) == pytest.approx([1.0] * 5)
    assert result.per_class["car"]["instances"] == 2
    other = DetectionEvaluator(NAMES)
    other.add(gt, pred, ignore=record([hidden], [1]))
    assert other.compute().map50 == pytest.approx(2 / 3)
    assert other.compute().per_class["person"]["instances"] == 0


def test_false_positive_on_an_image_without_ground_truth_counts() -> None:
    gt = record(grid(2), [0, 0])
    stray = record([[0, 0, 100, 100]], [0], [0.95])
    result = evaluate([(gt, record(grid(2), [0, 0], [0.8, 0.7])), (Detections.empty(), stray)])
    assert result.images == 2
    assert result.map50 == pytest.approx(2 / 3)


def test_image_without_ground_truth_or_predictions_counts_in_images_only() -> None:
    gt = record(grid(2), [0, 1])
    empty = Detections.empty()
    result = evaluate([(gt, gt), (empty, empty), (empty, empty)])
    assert result.images == 3
    assert metrics(result) == pytest.approx([1.0] * 5)


def test_per_class_values_and_classes_without_ground_truth() -> None:
    # car: perfect. person: 2 of 4 found (AP 51/101, R 0.5, P 1). bike: no ground truth, one
    # stray prediction: every bike metric is nan and bike is left out of the means.
    gt = record(grid(6), [0, 0, 1, 1, 1, 1])
    pred = record([*grid(4), [2000, 0, 2100, 100]], [0, 0, 1, 1, 2], [0.9, 0.9, 0.8, 0.8, 0.7])
    result = evaluate([(gt, pred)])
    car, person, bike = (result.per_class[name] for name in NAMES)
    assert [car[k] for k in ("precision", "recall", "f1", "map50", "map50_95")] == pytest.approx(
        [1.0] * 5)
    assert [person[k] for k in ("precision", "recall", "map50", "map50_95")] == pytest.approx(
        [1.0, 0.5, 51 / 101, 51 / 101])
    assert person["instances"] == 4 and person["images"] == 1
    assert bike["instances"] == 0 and bike["images"] == 0
    assert all(math.isnan(bike[k]) for k in ("precision", "recall", "f1", "map50", "map50_95"))
    assert result.map50 == pytest.approx((1 + 51 / 101) / 2)
    assert result.recall == pytest.approx(0.75)
    assert result.f1 == pytest.approx((1 + 2 / 3) / 2)


def test_empty_predictions_score_zero() -> None:
    result = evaluate([(record(grid(3), [0, 1, 2]), Detections.empty())])
    assert metrics(result) == [0.0] * 5
    assert all(row["map50"] == 0.0 for row in result.per_class.values())


def test_no_ground_truth_at_all_gives_nan() -> None:
    result = evaluate([(Detections.empty(), record(grid(1), [0]))])
    assert result.images == 1
    assert all(math.isnan(value) for value in metrics(result))


def test_no_images_gives_nan() -> None:
    result = DetectionEvaluator(NAMES).compute()
    assert result.images == 0 and math.isnan(result.map50)


def test_max_det_caps_map_but_not_precision_recall() -> None:
    # 100 higher-scored strays push the only true positive to rank 101: COCO's standard cap
    # of 100 never sees it (AP 0); P/R take every detection (R = 1 at the lowest threshold).
    gt = record([[0, 0, 100, 100]], [0])
    strays = [[1000 + 200.0 * i, 1000, 1100 + 200.0 * i, 1100] for i in range(100)]
    pred = record([*strays, [0, 0, 100, 100]], [0] * 101, [0.9] * 100 + [0.1])
    assert evaluate([(gt, pred)]).map50 == 0.0
    assert evaluate([(gt, pred)]).recall == pytest.approx(1.0)
    assert evaluate([(gt, pred)], max_det=101).map50 == pytest.approx(1 / 101)


def test_explicit_and_automatic_image_ids() -> None:
    evaluator = DetectionEvaluator(NAMES)
    assert evaluator.add(Detections.empty(), Detections.empty(), image_id=7) == 7
    assert evaluator.add(Detections.empty(), Detections.empty()) == 8
    assert len(evaluator) == 2
    with pytest.raises(UserInputError, match="image id 7 was already added"):
        evaluator.add(Detections.empty(), Detections.empty(), image_id=7)


@pytest.mark.parametrize(("gt", "pred", "message"), [
    (record(grid(1), [3]), Detections.empty(), r"gt class ids must be in 0..2, got \[3\]"),
    (Detections.empty(), record(grid(1), [-1]), r"pred class ids must be in 0..2"),
    (Detections.empty(("a", "b")), Detections.empty(), "gt class names"),
])
def test_records_that_do_not_fit_are_clear_errors(gt: Detections, pred: Detections,
                                                  message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        DetectionEvaluator(NAMES).add(gt, pred)


@pytest.mark.parametrize(("names", "max_det"), [((), 100), (("a", "a"), 100), (("a",), 0)])
def test_bad_evaluator_settings_are_clear_errors(names: tuple[str, ...], max_det: int) -> None:
    with pytest.raises(UserInputError, match="DetectionEvaluator"):
        DetectionEvaluator(names, max_det=max_det)


def test_to_json_has_the_fixed_keys_and_null_for_nan() -> None:
    gt = record(grid(2), [0, 1])
    data = evaluate([(gt, gt)]).to_json()
    assert list(data) == ["precision", "recall", "f1", "map50", "map50_95", "images", "per_class"]
    assert data["per_class"]["bike"]["map50"] is None
    assert data["per_class"]["car"]["instances"] == 1
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_table_lists_all_first_then_every_class() -> None:
    gt = record(grid(2), [0, 1])
    lines = evaluate([(gt, gt)]).table().splitlines()
    assert lines[0].split() == ["Class", "Images", "Instances", "P", "R", "F1", "mAP50",
                                "mAP50-95"]
    assert lines[1].split() == ["all", "1", "2", "1.000", "1.000", "1.000", "1.000", "1.000"]
    assert [line.split()[0] for line in lines[2:]] == list(NAMES)
    assert lines[4].split()[3:] == ["-"] * 5
