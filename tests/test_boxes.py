"""The box module: formats, areas, clipping and IoU, on numpy arrays and torch tensors alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detstream.engines.boxes import (
    box_area,
    clip_xyxy,
    complete_iou,
    cxcywh_to_xyxy,
    intersection_matrix,
    iou_matrix,
    ltrb_to_xyxy,
    pairwise_iou,
    tlwh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_ltrb,
    xyxy_to_tlwh,
)

# A box covering pixel columns 10..19 and rows 20..39: exclusive right/bottom edges.
XYXY = [[10.0, 20.0, 20.0, 40.0], [0.0, 0.0, 5.0, 1.0]]
CXCYWH = [[15.0, 30.0, 10.0, 20.0], [2.5, 0.5, 5.0, 1.0]]
TLWH = [[10.0, 20.0, 10.0, 20.0], [0.0, 0.0, 5.0, 1.0]]

CONVERSIONS = [
    (xyxy_to_cxcywh, XYXY, CXCYWH),
    (cxcywh_to_xyxy, CXCYWH, XYXY),
    (xyxy_to_tlwh, XYXY, TLWH),
    (tlwh_to_xyxy, TLWH, XYXY),
]


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize(("convert", "given", "expected"), CONVERSIONS,
                         ids=[c[0].__name__ for c in CONVERSIONS])
def test_conversions_give_the_same_kind_and_dtype(kind, convert, given, expected):
    boxes = np.array(given, np.float32) if kind == "numpy" else torch.tensor(given)
    out = convert(boxes)
    assert type(out) is type(boxes) and out.dtype == boxes.dtype
    np.testing.assert_array_equal(np.asarray(out), np.array(expected, np.float32))


@pytest.mark.parametrize("convert", [c[0] for c in CONVERSIONS])
def test_conversions_keep_leading_dimensions_and_handle_no_boxes(convert):
    assert convert(np.zeros((0, 4), np.float32)).shape == (0, 4)
    assert convert(np.ones((2, 3, 4))).shape == (2, 3, 4)
    assert convert(torch.zeros(0, 4)).shape == (0, 4)


def test_area_counts_pixels_with_exclusive_edges():
    np.testing.assert_array_equal(box_area(np.array(XYXY)), [200.0, 5.0])
    torch.testing.assert_close(box_area(torch.tensor(XYXY)), torch.tensor([200.0, 5.0]))


def test_ltrb_round_trip_around_anchor_points():
    points = torch.tensor([[12.0, 25.0], [1.0, 0.5]])
    distances = xyxy_to_ltrb(torch.tensor(XYXY), points)
    torch.testing.assert_close(distances, torch.tensor([[2.0, 5.0, 8.0, 15.0],
                                                        [1.0, 0.5, 4.0, 0.5]]))
    torch.testing.assert_close(ltrb_to_xyxy(distances, points), torch.tensor(XYXY))


def test_clip_keeps_the_exclusive_edge_at_the_image_size():
    boxes = [[-5.0, -1.0, 700.0, 300.0], [10.0, 10.0, 20.0, 20.0]]
    expected = [[0.0, 0.0, 640.0, 240.0], [10.0, 10.0, 20.0, 20.0]]
    out = clip_xyxy(np.array(boxes, np.float32), 640, 240)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    torch.testing.assert_close(clip_xyxy(torch.tensor(boxes), 640, 240), torch.tensor(expected))


def test_iou_matrix_known_values_zero_area_and_empty_sides():
    a = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 5.0, 5.0]])
    b = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_array_equal(intersection_matrix(a, b), [[100, 50, 0], [0, 0, 0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0], [0.0, 0.0, 0.0]])
    assert iou_matrix(a[:0], b).shape == (0, 3) and iou_matrix(a, b[:0]).shape == (2, 0)


def test_matrix_and_pairwise_iou_agree_with_torchvision():
    from torchvision.ops import box_iou

    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, (20, 4))
    a[:, 2:] += a[:, :2]
    b = a + rng.normal(0, 10, a.shape)
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    reference = box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(iou_matrix(a, b), reference, rtol=1e-12)
    rows = pairwise_iou(torch.from_numpy(a), torch.from_numpy(b), eps=0.0).numpy()
    np.testing.assert_allclose(rows, np.diag(reference), rtol=1e-12)
    broadcast = pairwise_iou(torch.from_numpy(a)[:, None], torch.from_numpy(b)[None], eps=0.0)
    np.testing.assert_allclose(broadcast.numpy(), reference, rtol=1e-12)


def test_complete_iou_is_iou_for_concentric_boxes_of_one_shape():
    a = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    b = torch.tensor([[2.0, 4.0, 8.0, 16.0]])  # same centre and aspect, 36 % of the area
    torch.testing.assert_close(complete_iou(a, b), pairwise_iou(a, b), atol=1e-6, rtol=0)
