"""Assigner, CIoU and the detection loss on cases with known answers."""

from __future__ import annotations

import torch
from torchvision.ops import complete_box_iou_loss

from detstream.engines.boxes import complete_iou
from detstream.engines.models import Detector
from detstream.engines.models.head import make_anchors
from detstream.engines.train.assigner import TaskAlignedAssigner
from detstream.engines.train.loss import DetectionLoss, pad_targets


def random_boxes(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 50 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_complete_iou_matches_torchvision():
    a, b = random_boxes(200, 0), random_boxes(200, 1)
    ours = 1.0 - complete_iou(a, b)
    reference = complete_box_iou_loss(a, b, reduction="none")
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)
    same = complete_iou(a, a)
    torch.testing.assert_close(same, torch.ones(200), atol=1e-5, rtol=0)


def test_complete_iou_of_known_boxes():
    # Same size, shifted 25 px right: IoU 0.6, enclosing 125x100, centre distance 25.
    a = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    b = torch.tensor([[25.0, 0.0, 125.0, 100.0]])
    expected = 0.6 - 25.0**2 / (125.0**2 + 100.0**2)
    torch.testing.assert_close(complete_iou(a, b), torch.tensor([expected]), atol=1e-5, rtol=0)


def grid_anchors(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return make_anchors([(size // 8, size // 8)], (8,), torch.device("cpu"), torch.float32)


def test_assigner_picks_topk_anchors_inside_the_box():
    anchors, _ = grid_anchors()
    n = len(anchors)
    gt = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]])  # covers anchor centres 12..36 → 4x4 = 16
    pred_boxes = gt.expand(1, n, 4).clone()  # every prediction equals the box: IoU 1
    scores = torch.full((1, n, 3), 0.5)
    assigner = TaskAlignedAssigner(topk=5)
    result = assigner(scores, pred_boxes, anchors, torch.tensor([[2]]), gt,
                      torch.tensor([[True]]))
    fg = result.foreground[0]
    assert int(fg.sum()) == 5
    inside = (anchors[:, 0] > 8) & (anchors[:, 0] < 40) & (anchors[:, 1] > 8) & (anchors[:, 1] < 40)
    assert bool(inside[fg].all())
    assert set(result.labels[0][fg].tolist()) == {2}
    # Soft targets: the best anchor gets the best IoU (1.0), only in the box's class column.
    assert torch.isclose(result.scores[0, fg, 2].max(), torch.tensor(1.0))
    assert float(result.scores[0, :, [0, 1]].abs().sum()) == 0.0


def test_assigner_gives_shared_anchor_to_best_overlap_and_ignores_padding():
    anchors, _ = grid_anchors()
    n = len(anchors)
    gts = torch.tensor([[[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 64.0, 64.0], [0, 0, 64, 64]]])
    valid = torch.tensor([[True, True, False]])
    pred = torch.tensor([10.0, 10.0, 60.0, 60.0]).expand(1, n, 4).clone()  # close to box 1
    result = TaskAlignedAssigner(topk=64)(torch.full((1, n, 2), 0.5), pred, anchors,
                                          torch.tensor([[0, 1, 0]]), gts, valid)
    fg = result.foreground[0]
    both = fg & (anchors[:, 0] > 8) & (anchors[:, 0] < 32) & (anchors[:, 1] > 8) \
        & (anchors[:, 1] < 32)
    assert bool(both.any())
    assert set(result.labels[0][both].tolist()) == {1}  # the shared anchors go to box 1
    outside_real = (anchors[:, 0] > 32) & (anchors[:, 1] < 8)  # only in the padding box
    assert not bool(fg[outside_real].any())


def test_pad_targets():
    targets = torch.tensor([[1, 0, 1, 1, 2, 2], [0, 2, 3, 3, 4, 4], [1, 1, 5, 5, 6, 6.0]])
    labels, boxes, valid = pad_targets(targets, 3)
    assert labels.shape == (3, 2) and valid.tolist() == [[True, False], [True, True],
                                                         [False, False]]
    assert labels[1].tolist() == [0, 1] and boxes[0, 0].tolist() == [3, 3, 4, 4]


def test_loss_falls_when_fitting_one_batch():
    torch.manual_seed(0)
    model = Detector("n", num_classes=2)
    model.train()
    images = torch.rand(2, 3, 128, 128)
    targets = torch.tensor([[0, 0, 20, 20, 60, 70], [0, 1, 70, 30, 120, 60],
                            [1, 1, 10, 50, 50, 100.0]])
    loss_fn = DetectionLoss(num_classes=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = None
    for _ in range(30):
        total, parts = loss_fn(model(images), targets)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        first = first if first is not None else float(total)
    assert parts.shape == (4,) and parts[3] == 0 and torch.isfinite(total)
    assert float(total) < 0.5 * first


def test_loss_without_boxes_is_finite():
    model = Detector("n", num_classes=3)
    model.train()
    total, parts = DetectionLoss(num_classes=3)(model(torch.rand(2, 3, 64, 64)),
                                                torch.zeros(0, 6))
    total.backward()
    assert torch.isfinite(total) and float(parts[0]) == 0.0 and float(parts[1]) > 0
