"""torchvision's COCO detectors wrapped for detstream: the raw ``xywh_scores`` output, decoded by
detstream's decoder, gives torchvision's own detections, in PyTorch and through ONNX.

Random weights only (nothing can be downloaded here). Left as built, they give near-constant,
low scores and nothing would be compared, so each model's head is re-initialised, from fixed
seeds, to give confident and varied detections (``_seed_ssd``, ``_seed_sparse``):

- SSDlite: a randomly initialised MobileNetV3's activations vanish, so the batch norms' running
  statistics are re-estimated on the frames; the last class convolutions get random weights
  (logits spread ~1.5, heavier-tailed in practice) and a constant background logit of 6, so
  tens to hundreds of anchors per frame have one class well above the others.
- FCOS / RetinaNet (sigmoid scores per class): the class tower's last GroupNorm is made to output
  per-channel standardised values (statistics measured on a 4x smaller copy of the frames, a
  cheap pass) shifted down by ``beta``, so after its ReLU each channel is sparse; class k reads
  one channel x_k with gain +a and every other class channel with -a: logit_k = a * (x_k -
  sum_{j != k} x_j) + b. Two classes of one anchor can then never both exceed b (that would need
  x_1 > x_2 and x_2 > x_1), which keeps torchvision's multi-label candidates and our
  best-class-per-anchor ones the same above the comparison threshold (below). The ten "N/A"
  slots and background never fire (logit -30), as with trained weights, where no target
  carries them. Box regressions get random weights of a useful spread (and FCOS's centreness
  too), so a box or score formula that differed from torchvision's would show.

Which detections are compared, and why exactly those: torchvision keeps every (anchor, class)
pair above ``score_thresh`` (multi-label), takes a top-k per level (FCOS, RetinaNet) or per class
(SSD) before NMS; our decoder keeps each anchor's best class only. Above ``T`` = the highest
*second-best* class score of any anchor, no anchor has two candidates, so both sides hold the
same candidates there; the test checks that top-k does not bind above ``T`` either (fewer pairs
above ``T`` than ``topk_candidates``). Greedy NMS decides a box only from higher-scoring boxes,
so the detections scoring above ``T`` (and above ``score_thresh``, plus a margin for float
noise) must be identical, and the ``detections_per_img`` cap cuts both score-sorted lists at the
same rank: each one of torchvision's has a twin in ours (same class, IoU >= 0.99, score within
1e-3) and vice versa. (A box clipped entirely off the image has zero area and no IoU; its
corners are compared instead, within 0.01 px.)

The reference is torchvision's full eval forward on the same letterboxed frames as 0..1 images
at exactly the input size, with its transform set not to resize (checked: its normalised tensor
equals our preprocessed input).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import onnx
import pytest
import torch
import torchvision.models.detection as detection
from torch import nn
from torchvision.models import get_weight
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

from detstream.engines.errors import UserInputError
from detstream.engines.export.parity import FP32_TOLERANCE, sample_frames
from detstream.engines.process.decode import DecodeConfig, decode
from detstream.engines.process.preprocess import Preprocessor
from detstream.engines.runtime.onnxruntime_backend import OnnxRuntimeBackend
from detstream.engines.spec import ModelSpec
from detstream.engines.zoo.onnx_import import inspect_onnx
from detstream.engines.zoo.torchvision_models import (
    COCO80,
    TORCHVISION_LABELS,
    TORCHVISION_MODELS,
    build_torchvision_detector,
    export_torchvision_onnx,
    torchvision_spec,
)

NAMES = list(TORCHVISION_MODELS)
#: Frames per model: the ResNet-50 models at 640 take seconds per frame on two cores.
FRAMES = {"ssdlite320_mobilenet_v3_large": 3, "fcos_resnet50_fpn": 2,
          "retinanet_resnet50_fpn_v2": 2}
MIN_IOU = 0.99
MAX_SCORE_DIFF = 1e-3
MARGIN = 1e-3  # detections this close to the comparison threshold may fall on one side only
CORNER_PX = 0.01  # zero-area boxes (clipped entirely off the image) have no IoU: corners then
MIN_PER_FRAME = 3

#: Head re-initialisation per model kind (see the module docstring).
HEAD_RMS = 0.7  # RMS of a (batch- or group-) normalised, ReLU-ed input to the last convolution
SSD_INIT = {"cls": 1.5, "background": 6.0, "reg": 1.5}
SPARSE_INIT = {
    "fcos": {"beta": 5.0, "gain": 8.0, "bias": -6.0, "reg": 0.5, "reg_bias": 2.0,
             "ctr": 1.0, "ctr_bias": 2.0},
    "retinanet": {"beta": 5.5, "gain": 8.0, "bias": -6.0, "reg": 0.4, "reg_bias": 0.0},
}
_USED = torch.zeros(91, dtype=torch.bool)
_USED[list(TORCHVISION_LABELS)] = True
_TO_80 = {tv: i for i, tv in enumerate(TORCHVISION_LABELS)}


def _normal_(conv: nn.Conv2d, std_out: float, bias: float | torch.Tensor,
             gen: torch.Generator) -> None:
    """Random weights giving outputs of spread ~``std_out`` on a normalised input."""
    with torch.no_grad():
        fan_in = conv.weight[0].numel()
        conv.weight.normal_(0.0, std_out / (HEAD_RMS * math.sqrt(fan_in)), generator=gen)
        conv.bias.copy_(torch.as_tensor(bias, dtype=conv.bias.dtype).expand_as(conv.bias))


def _seed_ssd(model: nn.Module, images: torch.Tensor, gen: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: the statistics of this one batch
    model.train()
    with torch.no_grad():
        model.head(list(model.backbone(images).values()))
    model.eval()
    for block in model.head.classification_head.module_list:
        conv = block[-1]
        anchors = conv.out_channels // 91
        bias = torch.zeros(anchors, 91)
        bias[:, ~_USED] = -30.0
        bias[:, 0] = SSD_INIT["background"]
        _normal_(conv, SSD_INIT["cls"], bias.flatten(), gen)
        with torch.no_grad():
            conv.weight.view(anchors, 91, -1)[:, ~_USED] = 0.0  # background and N/A: constant
    for block in model.head.regression_head.module_list:
        _normal_(block[-1], SSD_INIT["reg"], 0.0, gen)


def _seed_sparse(model: nn.Module, kind: str, images: torch.Tensor,
                 gen: torch.Generator) -> None:
    init = SPARSE_INIT[kind]
    model.eval()
    head = model.head.classification_head
    norm = [m for m in head.conv.modules() if isinstance(m, nn.GroupNorm)][-1]
    seen: list[torch.Tensor] = []
    hook = norm.register_forward_hook(
        lambda module, args, out: seen.append(out.transpose(0, 1).flatten(1)))
    with torch.no_grad():
        head(list(model.backbone(nn.functional.avg_pool2d(images, 4)).values()))
    hook.remove()
    values = torch.cat(seen, dim=1)
    mean, std = values.mean(1), values.std(1)
    conv = head.cls_logits
    anchors = conv.out_channels // 91
    channels = torch.randperm(conv.in_channels, generator=gen)[:80]
    labels = torch.tensor(TORCHVISION_LABELS)
    weight = torch.zeros(anchors, 91, conv.in_channels)
    weight[:, labels[:, None], channels[None, :]] = -init["gain"]
    weight[:, labels, channels] = init["gain"]
    # Per anchor slot a different bias: the slots of one location never tie.
    bias = torch.full((anchors, 91), -30.0)
    bias[:, _USED] = init["bias"] + 0.25 * torch.arange(anchors, dtype=torch.float32)[:, None]
    with torch.no_grad():
        norm.weight.div_(std)
        norm.bias.sub_(mean).div_(std).sub_(init["beta"])
        conv.weight.zero_()
        conv.weight[:, :, 1, 1] = weight.reshape(conv.out_channels, -1)
        conv.bias.copy_(bias.flatten())
    regression = model.head.regression_head
    _normal_(regression.bbox_reg, init["reg"], init["reg_bias"], gen)
    if kind == "fcos":
        _normal_(regression.bbox_ctrness, init["ctr"], init["ctr_bias"], gen)


@dataclass
class Case:
    """One model's shared material: the torchvision reference and our wrapper's output."""

    name: str
    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    images: torch.Tensor  # our preprocessed input [B, 3, S, S]
    raw: torch.Tensor  # the wrapper's output
    reference: list[dict[str, torch.Tensor]]  # torchvision's detections
    cfg: DecodeConfig
    threshold: float  # compare detections scoring above this


@pytest.fixture(scope="module", params=NAMES)
def case(request) -> Case:
    name = request.param
    entry = TORCHVISION_MODELS[name]
    started = time.perf_counter()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = getattr(detection, entry.builder)(weights=None, weights_backbone=None)
    spec = torchvision_spec(name)
    frames = sample_frames(FRAMES[name])
    images, _ = Preprocessor(spec, "cpu")(frames)
    # The same letterboxed frames as torchvision takes them: RGB in 0..1, un-normalised.
    plain, _ = Preprocessor(replace(spec, mean=(0.0,) * 3, std=(1.0,) * 3), "cpu")(frames)
    if entry.kind == "ssd":
        _seed_ssd(model, images, gen)
    else:
        _seed_sparse(model, entry.kind, images, gen)
    model.eval()
    # torchvision's pretrained files come from frozen batch norms: no num_batches_tracked.
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    wrapper, built_spec = build_torchvision_detector(name, state)
    assert built_spec == spec
    assert set(wrapper.state_dict()) == set(model.state_dict())  # torchvision's own keys
    with torch.inference_mode():
        raw = wrapper(images)

    # The reference: torchvision's whole eval forward (transform, backbone, head, anchors,
    # postprocess), told not to resize. SSD's transform already has a fixed size equal to ours;
    # FCOS/RetinaNet scale the short side to min_size and cap the long one at max_size.
    size = entry.input_size
    if entry.kind != "ssd":
        model.transform.min_size, model.transform.max_size = (size,), size
    with torch.inference_mode():
        transformed, _ = model.transform(list(plain))
        reference = model(list(plain))
    assert tuple(transformed.tensors.shape) == tuple(images.shape)  # no resize, no padding
    torch.testing.assert_close(transformed.tensors, images, atol=1e-5, rtol=0)

    # torchvision's postprocess settings; our top-k spans every anchor (it must not bind).
    cfg = DecodeConfig(conf=model.score_thresh, iou=model.nms_thresh,
                       max_det=model.detections_per_img, pre_nms_topk=raw.shape[2])
    scores = raw[:, 4:]
    second = scores.topk(2, dim=1).values[:, 1].max().item()
    threshold = max(second, model.score_thresh) + MARGIN
    # Top-k does not bind above the threshold: per class (SSD) or per level (FCOS, RetinaNet;
    # the count over all levels bounds each level's).
    above = scores > threshold
    counts = above.sum(dim=2) if entry.kind == "ssd" else above.sum(dim=(1, 2))
    assert int(counts.max()) < model.topk_candidates
    print(f"\n{name}: {len(frames)} frames, threshold {threshold:.4f} (highest second-best "
          f"class score {second:.4f}), set up in {time.perf_counter() - started:.1f} s")
    return Case(name, spec, state, images, raw, reference, cfg, threshold)


def _compare(reference: list[dict[str, torch.Tensor]], decoded, threshold: float
             ) -> tuple[list[int], float, float]:
    """Twin check both ways above ``threshold``.

    Returns:
        ``(compared per frame, min IoU over boxes with area, max score difference)``.
    """
    per_frame, min_iou, max_diff = [], 1.0, 0.0
    for ref, (boxes, scores, classes) in zip(reference, decoded, strict=True):
        labels = ref["labels"].tolist()
        assert all(label in _TO_80 for label in labels), "torchvision fired an unused slot"
        sides = (
            (ref["boxes"], ref["scores"], torch.tensor([_TO_80[v] for v in labels],
                                                       dtype=torch.int64)),
            (boxes, scores, classes.to(torch.int64)),
        )
        for (a_box, a_score, a_cls), (b_box, b_score, b_cls) in (sides, sides[::-1]):
            keep = a_score > threshold
            a_box, a_score, a_cls = a_box[keep], a_score[keep], a_cls[keep]
            if not len(a_box):
                continue
            assert len(b_box), "one side has detections above the threshold, the other none"
            iou = box_iou(a_box, b_box).nan_to_num(0.0)
            corner = (a_box[:, None, :] - b_box[None, :, :]).abs().amax(dim=2)
            near = (a_score[:, None] - b_score[None, :]).abs() <= MAX_SCORE_DIFF
            twin = (a_cls[:, None] == b_cls[None, :]) & near
            twin &= (iou >= MIN_IOU) | (corner <= CORNER_PX)
            missing = (~twin.any(dim=1)).nonzero().flatten().tolist()
            assert not missing, (
                f"{len(missing)} of {len(a_box)} detections above {threshold:.4f} have no twin, "
                f"e.g. class {COCO80[int(a_cls[missing[0]])]} score "
                f"{float(a_score[missing[0]]):.4f} box {a_box[missing[0]].tolist()}")
            pick = torch.where(twin, iou + 1.0, torch.zeros_like(iou)).argmax(dim=1)
            rows = torch.arange(len(a_box))
            area = (a_box[:, 2:] - a_box[:, :2]).prod(dim=1) > 0
            if area.any():
                min_iou = min(min_iou, float(iou[rows, pick][area].min()))
            max_diff = max(max_diff, float((a_score - b_score[pick]).abs().max()))
        per_frame.append(int((ref["scores"] > threshold).sum()))
    return per_frame, min_iou, max_diff


def test_table_matches_torchvision() -> None:
    """Names, class mapping, published mAP and parameter counts agree with torchvision."""
    for name, entry in TORCHVISION_MODELS.items():
        weights = get_weight(entry.weights)
        assert weights is entry.weights_entry()
        assert entry.box_map == weights.meta["_metrics"]["COCO-val2017"]["box_map"]
        assert entry.num_params == weights.meta["num_params"]
        assert entry.builder == name and hasattr(detection, entry.builder)
        assert entry.licence.startswith("BSD-3-Clause")
        categories = weights.meta["categories"]
        assert len(categories) == 91
        assert tuple(categories[i] for i in TORCHVISION_LABELS) == COCO80
        assert [c for c in categories if c not in ("__background__", "N/A")] == list(COCO80)
    assert len(COCO80) == 80 and len(set(COCO80)) == 80


def test_ssdlite_spec_other_sizes_and_refusals() -> None:
    """The spec follows the model's own transform; anchors for another input size are the
    model's own; unknown names and ill-fitting weights are refused with a sentence."""
    wrapper, spec = build_torchvision_detector("ssdlite320_mobilenet_v3_large")
    assert not wrapper.training
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5)
    assert spec.layout == "xywh_scores" and spec.colour == "rgb" and spec.letterbox == "center"
    assert spec.input_size == (320, 320) and spec.class_names == COCO80
    assert spec.scale == pytest.approx(1 / 255)
    for name in ("fcos_resnet50_fpn", "retinanet_resnet50_fpn_v2"):
        other = torchvision_spec(name)
        assert other.input_size == (640, 640) and other.mean == (0.485, 0.456, 0.406)
        assert other.std == (0.229, 0.224, 0.225) and other.input_size[0] % other.stride == 0

    # 256 x 256: anchors from shapes alone (meta device) = the generator on real features.
    images = torch.rand(1, 3, 256, 256)
    with torch.inference_mode():
        features = list(wrapper.backbone(images).values())
        expected = wrapper._anchor_generator(ImageList(images, [(256, 256)]), features)[0]
        raw = wrapper(images)
    torch.testing.assert_close(wrapper.make_anchors((256, 256)), expected)
    assert raw.shape == (1, 84, len(expected))

    with pytest.raises(UserInputError, match="unknown torchvision model"):
        build_torchvision_detector("yolo")
    state = dict(wrapper.state_dict())
    state.pop(next(iter(state)))
    with pytest.raises(UserInputError, match="do not fit"):
        build_torchvision_detector("ssdlite320_mobilenet_v3_large", state)


def test_matches_torchvision(case: Case) -> None:
    """Our raw output through detstream's decoder = torchvision's own detections."""
    entry = TORCHVISION_MODELS[case.name]
    assert case.raw.shape[:2] == (len(case.images), 84)
    decoded = decode(case.raw, "xywh_scores", case.cfg, case.spec.input_size)
    per_frame, min_iou, max_diff = _compare(case.reference, decoded, case.threshold)
    classes = {int(c) for _, s, cls in decoded for c in cls[s > case.threshold]}
    print(f"{case.name} torch: {sum(per_frame)} detections compared {per_frame}, "
          f"{len(classes)} classes, min IoU {min_iou:.6f}, max score diff {max_diff:.2e}")
    assert min(per_frame) >= MIN_PER_FRAME
    assert len(classes) >= 3
    if entry.kind == "ssd":
        assert len(classes) >= 20


@pytest.fixture(scope="module")
def exported(case: Case, tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("tv") / f"{case.name}.onnx"
    started = time.perf_counter()
    out, spec = export_torchvision_onnx(case.name, path, case.state_dict, max_batch=2)
    exported_s = time.perf_counter() - started
    backend = OnnxRuntimeBackend(out, spec, "cpu")
    # One frame per call: the graph was traced at batch 2, so this also runs its dynamic batch.
    raw = torch.cat([backend.infer(frame[None]) for frame in case.images])
    print(f"\n{case.name}: exported in {exported_s:.1f} s, onnxruntime "
          f"{time.perf_counter() - started - exported_s:.1f} s")
    return out, spec, raw


def test_onnx_matches_torchvision(case: Case, exported) -> None:
    path, spec, raw = exported
    assert spec == case.spec
    graph = onnx.load(str(path), load_external_data=False)
    batch = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.HasField("dim_value")  # a dynamic batch axis
    assert raw.shape == case.raw.shape
    box_error = float((raw[:, :4] - case.raw[:, :4]).abs().max() / case.raw[:, :4].abs().max())
    score_error = float((raw[:, 4:] - case.raw[:, 4:]).abs().max())
    decoded = decode(raw, "xywh_scores", case.cfg, case.spec.input_size)
    per_frame, min_iou, max_diff = _compare(case.reference, decoded, case.threshold)
    print(f"{case.name} onnx: raw box error {box_error:.2e} (relative), score error "
          f"{score_error:.2e}; {sum(per_frame)} detections compared, min IoU {min_iou:.6f}, "
          f"max score diff {max_diff:.2e}")
    assert box_error < FP32_TOLERANCE and score_error < FP32_TOLERANCE
    assert min(per_frame) >= MIN_PER_FRAME


def test_inspect_onnx_reads_the_spec(case: Case, exported) -> None:
    path, spec, _ = exported
    found = inspect_onnx(path)
    assert found == case.spec == spec
    assert found.class_names == COCO80 and found.layout == "xywh_scores"
    assert (found.mean, found.std, found.scale) == (spec.mean, spec.std, spec.scale)
    assert np.array_equal(found.input_size, case.spec.input_size)
