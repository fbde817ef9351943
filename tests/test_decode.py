"""Decoding raw ``xywh_scores`` outputs: NMS, filters, caps, empty inputs, letterbox mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detstream.engines.errors import UserInputError
from detstream.engines.process.decode import (
    DecodeConfig,
    decode,
    decode_xywh_scores,
    to_detections,
)
from detstream.engines.process.letterbox import Letterbox

NUM_CLASSES = 3


def raw_output(anchors: list[tuple[float, float, float, float, int, float]],
               num_anchors: int = 16) -> torch.Tensor:
    """A float32 [1, 4 + C, num_anchors] output holding the given anchors, the rest at score 0.

    Each anchor is ``(cx, cy, w, h, class_id, score)`` in input pixels.
    """
    raw = torch.zeros(1, 4 + NUM_CLASSES, num_anchors)
    raw[0, :4] = torch.tensor([50.0, 50.0, 10.0, 10.0]).unsqueeze(1)
    for i, (cx, cy, w, h, cls, score) in enumerate(anchors):
        raw[0, :4, i] = torch.tensor([cx, cy, w, h])
        raw[0, 4 + cls, i] = score
    return raw


def only(results: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The single image's result as numpy arrays."""
    (boxes, scores, class_ids), = results
    return boxes.numpy(), scores.numpy(), class_ids.numpy()


def test_nms_keeps_the_higher_of_two_overlapping_boxes_of_one_class() -> None:
    raw = raw_output([(100, 100, 40, 40, 0, 0.6), (102, 100, 40, 40, 0, 0.9)])
    boxes, scores, class_ids = only(decode_xywh_scores(raw, DecodeConfig()))
    np.testing.assert_allclose(boxes, [[82, 80, 122, 120]])
    np.testing.assert_allclose(scores, [0.9])
    assert class_ids.tolist() == [0]


@pytest.mark.parametrize(("agnostic", "expected_classes"), [(False, [1, 0]), (True, [1])])
def test_overlapping_boxes_of_two_classes(agnostic: bool, expected_classes: list[int]) -> None:
    raw = raw_output([(100, 100, 40, 40, 0, 0.6), (102, 100, 40, 40, 1, 0.9)])
    _, _, class_ids = only(decode_xywh_scores(raw, DecodeConfig(agnostic=agnostic)))
    assert class_ids.tolist() == expected_classes


def test_distant_boxes_of_one_class_both_survive() -> None:
    raw = raw_output([(50, 50, 20, 20, 2, 0.5), (200, 200, 20, 20, 2, 0.7)])
    _, scores, _ = only(decode_xywh_scores(raw, DecodeConfig()))
    np.testing.assert_allclose(scores, [0.7, 0.5])


@pytest.mark.parametrize(("conf", "expected"), [(0.1, [0.8, 0.3]), (0.3, [0.8]), (0.8, [])])
def test_conf_filter_keeps_scores_strictly_above(conf: float, expected: list[float]) -> None:
    raw = raw_output([(50, 50, 20, 20, 0, 0.3), (200, 200, 20, 20, 0, 0.8)])
    _, scores, _ = only(decode_xywh_scores(raw, DecodeConfig(conf=conf)))
    np.testing.assert_allclose(scores, expected)


def test_best_class_per_anchor() -> None:
    raw = raw_output([(50, 50, 20, 20, 0, 0.4)])
    raw[0, 4 + 2, 0] = 0.7
    _, scores, class_ids = only(decode_xywh_scores(raw, DecodeConfig()))
    np.testing.assert_allclose(scores, [0.7])
    assert class_ids.tolist() == [2]


@pytest.mark.parametrize(("classes", "expected"), [((1,), [1]), ((0, 2), [2, 0]), ((), [])])
def test_class_filter(classes: tuple[int, ...], expected: list[int]) -> None:
    raw = raw_output([(50, 50, 20, 20, 0, 0.5), (150, 50, 20, 20, 1, 0.6),
                      (250, 50, 20, 20, 2, 0.7)])
    _, _, class_ids = only(decode_xywh_scores(raw, DecodeConfig(classes=classes)))
    assert class_ids.tolist() == expected


def test_max_det_caps_after_nms_keeping_the_best() -> None:
    anchors = [(20.0 + 30 * i, 50, 20, 20, 0, 0.3 + 0.05 * i) for i in range(8)]
    _, scores, _ = only(decode_xywh_scores(raw_output(anchors), DecodeConfig(max_det=3)))
    np.testing.assert_allclose(scores, [0.65, 0.6, 0.55])


def test_pre_nms_topk_keeps_the_best_candidates() -> None:
    anchors = [(20.0 + 30 * i, 50, 20, 20, 0, 0.3 + 0.05 * i) for i in range(8)]
    _, scores, _ = only(decode_xywh_scores(raw_output(anchors), DecodeConfig(pre_nms_topk=2)))
    np.testing.assert_allclose(scores, [0.65, 0.6])


@pytest.mark.parametrize("agnostic", [False, True])
def test_no_score_above_conf_gives_empty_results(agnostic: bool) -> None:
    raw = raw_output([(50, 50, 20, 20, 0, 0.1)])
    boxes, scores, class_ids = only(decode_xywh_scores(raw, DecodeConfig(agnostic=agnostic)))
    assert boxes.shape == (0, 4) and scores.shape == (0,) and class_ids.shape == (0,)
    assert boxes.dtype == np.float32 and class_ids.dtype == np.int64


def test_zero_anchors_give_empty_results() -> None:
    boxes, _, _ = only(decode_xywh_scores(torch.zeros(1, 4 + NUM_CLASSES, 0), DecodeConfig()))
    assert boxes.shape == (0, 4)


def test_batch_images_are_decoded_independently() -> None:
    first = raw_output([(100, 100, 40, 40, 0, 0.6), (102, 100, 40, 40, 0, 0.9)])
    second = raw_output([(50, 60, 20, 30, 2, 0.5), (200, 200, 20, 20, 1, 0.7),
                         (300, 300, 20, 20, 0, 0.1)])
    results = decode_xywh_scores(torch.cat((first, second)), DecodeConfig())
    assert len(results) == 2
    (boxes0, scores0, cls0), (boxes1, scores1, cls1) = results
    np.testing.assert_allclose(scores0.numpy(), [0.9])
    np.testing.assert_allclose(boxes0.numpy(), [[82, 80, 122, 120]])
    assert cls0.tolist() == [0]
    np.testing.assert_allclose(scores1.numpy(), [0.7, 0.5])
    np.testing.assert_allclose(boxes1.numpy(), [[190, 190, 210, 210], [40, 45, 60, 75]])
    assert cls1.tolist() == [1, 2]


def test_half_precision_input_gives_float32_boxes() -> None:
    raw = raw_output([(100, 100, 40, 40, 0, 0.9)]).half()
    boxes, scores, _ = only(decode_xywh_scores(raw, DecodeConfig()))
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    np.testing.assert_allclose(boxes, [[80, 80, 120, 120]])


def test_input_size_clips_before_nms() -> None:
    raw = raw_output([(10, 310, 40, 40, 0, 0.9)])
    boxes, _, _ = only(decode_xywh_scores(raw, DecodeConfig(), input_size=(320, 320)))
    np.testing.assert_allclose(boxes, [[0, 290, 30, 320]])


def test_decode_dispatches_by_layout() -> None:
    raw = raw_output([(100, 100, 40, 40, 0, 0.9)])
    boxes, _, _ = only(decode(raw, "xywh_scores", DecodeConfig()))
    np.testing.assert_allclose(boxes, [[80, 80, 120, 120]])
    with pytest.raises(UserInputError, match="no decoder for output layout 'ssd'"):
        decode(raw, "ssd", DecodeConfig())


def test_yolov5_layout_multiplies_objectness_and_class_score() -> None:
    raw = torch.zeros(1, 10, 5 + NUM_CLASSES)
    raw[0, :, :4] = torch.tensor([50.0, 50.0, 10.0, 10.0])
    raw[0, 0, :5] = torch.tensor([100.0, 60.0, 40.0, 20.0, 0.8])
    raw[0, 0, 5 + 2] = 0.5  # score 0.4, class 2
    raw[0, 1, :5] = torch.tensor([200.0, 60.0, 40.0, 20.0, 0.9])
    raw[0, 1, 5 + 1] = 0.2  # score 0.18: below conf 0.25 although objectness is high
    boxes, scores, classes = only(decode(raw, "yolov5", DecodeConfig(conf=0.25)))
    np.testing.assert_allclose(boxes, [[80, 50, 120, 70]])
    np.testing.assert_allclose(scores, [0.4], rtol=1e-6)
    assert classes.tolist() == [2]


def test_yolox_layout_decodes_grid_offsets() -> None:
    size = (64, 96)  # grids 8x12, 4x6, 2x3 → 96 + 24 + 6 = 126 cells
    raw = torch.zeros(1, 126, 5 + NUM_CLASSES)
    # Cell (gx=3, gy=2) of the stride-16 level: index 96 + 2 * 6 + 3.
    raw[0, 96 + 15, :5] = torch.tensor([0.5, 0.25, float(np.log(2.0)), 0.0, 0.9])
    raw[0, 96 + 15, 5] = 1.0
    boxes, scores, classes = only(decode(raw, "yolox", DecodeConfig(), input_size=size))
    # centre ((3.5) * 16, (2.25) * 16) = (56, 36); size (2 * 16, 1 * 16) = (32, 16).
    np.testing.assert_allclose(boxes, [[40, 28, 72, 44]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.9], rtol=1e-6)
    assert classes.tolist() == [0]
    with pytest.raises(UserInputError, match=r"expected \[B, 126, 5 \+ C\]"):
        decode(raw[:, :100], "yolox", DecodeConfig(), input_size=size)


@pytest.mark.parametrize("shape", [(4 + NUM_CLASSES, 16), (1, 4, 16)])
def test_wrong_raw_shape_is_a_clear_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(UserInputError, match=r"expected a raw output of shape \[B, 4 \+ C, N\]"):
        decode_xywh_scores(torch.zeros(shape), DecodeConfig())


@pytest.mark.parametrize("changes", [{"conf": 1.5}, {"iou": -0.1}, {"max_det": 0},
                                     {"pre_nms_topk": 0}])
def test_bad_config_is_a_clear_error(changes: dict[str, float]) -> None:
    with pytest.raises(UserInputError, match="DecodeConfig"):
        DecodeConfig(**changes)  # type: ignore[arg-type]


def test_letterbox_mapping_gives_exact_frame_coordinates() -> None:
    # A 1280x720 frame in a 640x640 input: ratio 0.5, resized 640x360, padded 140 px on top.
    info = Letterbox(ratio=0.5, pad_x=0.0, pad_y=140.0, frame_width=1280, frame_height=720)
    raw = raw_output([(120, 190, 40, 60, 1, 0.9), (630, 480, 40, 40, 2, 0.8),
                      (20, 150, 40, 40, 0, 0.7)])
    boxes, scores, class_ids = decode_xywh_scores(raw, DecodeConfig())[0]
    record = to_detections(boxes, scores, class_ids, info, ("a", "b", "c"))
    # Input (100, 160, 140, 220) → x / 0.5, (y - 140) / 0.5. The second box runs past the
    # frame's right edge and the third into the top padding: both are clipped to the frame.
    expected = np.array([[200, 40, 280, 160], [1220, 640, 1280, 720], [0, 0, 80, 60]],
                        np.float32)
    np.testing.assert_array_equal(record.boxes, expected)
    np.testing.assert_allclose(record.scores, [0.9, 0.8, 0.7])
    assert record.class_ids.dtype == np.int32 and record.class_ids.tolist() == [1, 2, 0]
    assert record.labels == ["b", "c", "a"]
    assert record.track_ids.tolist() == [-1, -1, -1]


def test_to_detections_with_no_boxes() -> None:
    info = Letterbox(ratio=1.0, pad_x=0.0, pad_y=0.0, frame_width=320, frame_height=320)
    raw = raw_output([])
    record = to_detections(*decode_xywh_scores(raw, DecodeConfig())[0], info, ("a",))
    assert len(record) == 0 and record.boxes.shape == (0, 4)
    assert record.class_names == ("a",)
