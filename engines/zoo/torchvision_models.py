"""torchvision's COCO detectors as detstream models (raw ``xywh_scores`` output).

Three single-stage detectors from ``torchvision.models.detection`` are wrapped so that their
forward pass ends where detstream's shared decoder starts
(:func:`detstream.engines.process.decode.decode`):
``[B, 4 + 80, N]`` with box centre x, centre y, width, height in model-input pixels, then the 80
COCO class scores in [0, 1]. Inside the graph: the backbone, the head, the anchors (computed once
for the input size and kept as a constant buffer), the model's own box coder and its score
function. Outside: letterbox and normalisation (our :class:`~detstream.engines.process.preprocess.
Preprocessor`, per the returned :class:`~detstream.engines.spec.ModelSpec`) and NMS (our decoder).

torchvision's ``GeneralizedRCNNTransform`` (resize to an 800-pixel short side for the ResNet
models, normalise, pad) is skipped: the wrapper takes the already letterboxed and normalised
``[B, 3, S, S]`` tensor. The ResNet-50 models were trained and evaluated at ~800 pixels, so at
640 expect somewhat less than their published mAP.

torchvision numbers its outputs by COCO category id (91 slots: 0 is background, ten ids are the
"N/A" gaps of the COCO label map); the wrapper keeps the 80 real classes, in the usual contiguous
order (:data:`COCO80`). SSDlite's softmax still runs over all 91 slots, as torchvision's does.

Weights are never downloaded here: build with random weights, or pass a ``state_dict`` the
caller fetched and verified (e.g. ``weights.get_state_dict(check_hash=True)`` from
:meth:`TorchvisionModel.weights_entry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torchvision.models.detection.image_list import ImageList

from detstream.engines.errors import UserInputError
from detstream.engines.export.onnx import write_traced_onnx
from detstream.engines.spec import ModelSpec
from detstream.engines.zoo.coco import COCO80

#: COCO category ids that are not classes ("N/A" in torchvision's label list).
_COCO_GAPS = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83})

#: For each :data:`COCO80` class, its slot among torchvision's 91 outputs (its COCO category id).
TORCHVISION_LABELS: tuple[int, ...] = tuple(i for i in range(1, 91) if i not in _COCO_GAPS)

LICENCE = "BSD-3-Clause (torchvision code); weights per torchvision"

#: Normalisation the models apply to 0..1 RGB (their ``model.transform.image_mean/std``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TorchvisionModel:
    """One torchvision detector detstream can wrap.

    Attributes:
        name: the key in :data:`TORCHVISION_MODELS`.
        builder: the builder in ``torchvision.models.detection``.
        weights: the COCO weights, as ``torchvision.models.get_weight`` names them.
        kind: the head and box coder family: ``ssd``, ``fcos`` or ``retinanet``.
        input_size: square input side in pixels.
        stride: what input sizes must be multiples of (torchvision pads its ResNet-FPN inputs
            to 32; SSDlite's default boxes are relative to the image, 32 is its backbone stride).
        box_map: published COCO val2017 box mAP (x100) of ``weights``.
        num_params: published parameter count of ``weights`` (torchvision counts the frozen
            batch-norm affine values of the pretrained ResNet-50 backbones as buffers, so a
            model built without weights has ~53k more trainable parameters than this).
        mean, std: normalisation of 0..1 RGB values the model was trained with.
        licence: licence of the code and weights.
    """

    name: str
    builder: str
    weights: str
    kind: str
    input_size: int
    stride: int
    box_map: float
    num_params: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    licence: str = LICENCE

    def weights_entry(self) -> Any:
        """The torchvision ``Weights`` enum member (its ``meta``, ``url``; nothing downloaded)."""
        from torchvision.models import get_weight

        return get_weight(self.weights)


# box_map and num_params: torchvision's model documentation ("Object Detection" table, also the
# weights enums' meta["_metrics"]["COCO-val2017"]["box_map"] and meta["num_params"]);
# tests/test_torchvision_models.py checks them against the installed torchvision.
TORCHVISION_MODELS: dict[str, TorchvisionModel] = {
    "ssdlite320_mobilenet_v3_large": TorchvisionModel(
        name="ssdlite320_mobilenet_v3_large", builder="ssdlite320_mobilenet_v3_large",
        weights="SSDLite320_MobileNet_V3_Large_Weights.COCO_V1", kind="ssd", input_size=320,
        stride=32, box_map=21.3, num_params=3_440_060, mean=HALF, std=HALF),
    "fcos_resnet50_fpn": TorchvisionModel(
        name="fcos_resnet50_fpn", builder="fcos_resnet50_fpn",
        weights="FCOS_ResNet50_FPN_Weights.COCO_V1", kind="fcos", input_size=640, stride=32,
        box_map=39.2, num_params=32_269_600, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "retinanet_resnet50_fpn_v2": TorchvisionModel(
        name="retinanet_resnet50_fpn_v2", builder="retinanet_resnet50_fpn_v2",
        weights="RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1", kind="retinanet", input_size=640,
        stride=32, box_map=41.5, num_params=38_198_935, mean=IMAGENET_MEAN, std=IMAGENET_STD),
}


def _entry(name: str) -> TorchvisionModel:
    entry = TORCHVISION_MODELS.get(name)
    if entry is None:
        raise UserInputError(f"unknown torchvision model {name!r}; available: "
                             f"{', '.join(sorted(TORCHVISION_MODELS))}")
    return entry


class TorchvisionDetector(nn.Module):
    """A torchvision SSD / FCOS / RetinaNet without its transform and postprocess.

    Holds the detector's ``backbone`` and ``head`` (so its state-dict keys are torchvision's)
    and its anchors for ``input_size`` as a non-persistent buffer; anchors for other input
    sizes are made on first use and cached, so an ONNX trace sees them as constants too.

    Args:
        model: the torchvision detector (``SSD``, ``FCOS`` or ``RetinaNet``), in eval mode.
        kind: ``ssd``, ``fcos`` or ``retinanet``.
        input_size: (height, width) to prepare anchors for.

    Forward: float ``[B, 3, H, W]`` letterboxed, normalised RGB → float32 ``[B, 84, N]``
    (``xywh_scores``: centre x, centre y, width, height in input pixels, then 80 COCO scores);
    N is the anchor count (SSDlite 320: 3234, FCOS 640: 8525, RetinaNet 640: 76725).
    """

    def __init__(self, model: nn.Module, kind: str, input_size: tuple[int, int]) -> None:
        super().__init__()
        if kind not in ("ssd", "fcos", "retinanet"):
            raise ValueError(f"kind must be 'ssd', 'fcos' or 'retinanet', got {kind!r}")
        self.kind = kind
        self.backbone = model.backbone
        self.head = model.head
        self._anchor_generator = model.anchor_generator  # no tensors of its own
        coder = model.box_coder
        if kind == "fcos":  # BoxLinearCoder: left/top/right/bottom distances x anchor size
            self.normalize_by_size = bool(coder.normalize_by_size)
        else:  # BoxCoder: weighted centre offsets and log sizes, sizes clamped before exp
            self.box_weights = tuple(float(w) for w in coder.weights)
            self.log_size_clip = float(coder.bbox_xform_clip)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.register_buffer("labels", torch.tensor(TORCHVISION_LABELS), persistent=False)
        self.register_buffer("anchors", self.make_anchors(self.input_size), persistent=False)
        self._anchor_cache: dict[tuple[int, int], torch.Tensor] = {}

    @torch.no_grad()
    def make_anchors(self, size: tuple[int, int]) -> torch.Tensor:
        """float32 [N, 4] ``xyxy`` anchors (default boxes for SSD) for an input of ``size``.

        The feature-map sizes come from running the backbone on the ``meta`` device (shapes
        only, no arithmetic); the boxes from the model's own anchor generator.
        """
        height, width = size
        tensors = {name: value.to("meta")
                   for name, value in self.backbone.state_dict(keep_vars=True).items()}
        dtype = next(self.backbone.parameters()).dtype  # an FP16 model takes FP16 input
        dummy = torch.empty(1, 3, height, width, device="meta", dtype=dtype)
        features = functional_call(self.backbone, tensors, (dummy,))
        if isinstance(features, torch.Tensor):
            features = {"0": features}
        shapes = [tuple(f.shape[-2:]) for f in features.values()]
        images = ImageList(torch.empty(1, 0, height, width), [(height, width)])
        maps = [torch.empty(1, 0, h, w) for h, w in shapes]
        return self._anchor_generator(images, maps)[0].float()

    def _anchors_for(self, images: torch.Tensor) -> torch.Tensor:
        size = (int(images.shape[-2]), int(images.shape[-1]))
        if size == self.input_size:
            return self.anchors
        if size not in self._anchor_cache:
            self._anchor_cache[size] = self.make_anchors(size)
        return self._anchor_cache[size].to(images.device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(images)
        if isinstance(features, torch.Tensor):
            features = {"0": features}
        # The decoding tail runs in FP32 even in an FP16 model (as detstream's own head does):
        # pixel coordinates up to the input size need more than FP16's 11 bits.
        out = {key: value.float() for key, value in self.head(list(features.values())).items()}
        anchors = self._anchors_for(images).float()
        if self.kind == "fcos":
            boxes = self._decode_distances(out["bbox_regression"], anchors)
            scores = torch.sqrt(torch.sigmoid(out["cls_logits"][..., self.labels])
                                * torch.sigmoid(out["bbox_ctrness"]))
        else:
            boxes = self._decode_deltas(out["bbox_regression"], anchors)
            if self.kind == "ssd":  # softmax over background, gaps and classes, then the 80
                scores = torch.softmax(out["cls_logits"], dim=-1)[..., self.labels]
            else:
                scores = torch.sigmoid(out["cls_logits"][..., self.labels])
        return torch.cat([boxes, scores], dim=-1).permute(0, 2, 1)

    def _decode_deltas(self, deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """torchvision's ``BoxCoder.decode_single`` on [B, N, 4] deltas, as cx, cy, w, h."""
        widths = anchors[:, 2] - anchors[:, 0]
        heights = anchors[:, 3] - anchors[:, 1]
        ctr_x = anchors[:, 0] + 0.5 * widths
        ctr_y = anchors[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.box_weights
        dx = deltas[..., 0] / wx
        dy = deltas[..., 1] / wy
        dw = torch.clamp(deltas[..., 2] / ww, max=self.log_size_clip)
        dh = torch.clamp(deltas[..., 3] / wh, max=self.log_size_clip)
        cx = dx * widths + ctr_x
        cy = dy * heights + ctr_y
        w = torch.exp(dw) * widths
        h = torch.exp(dh) * heights
        return torch.stack((cx, cy, w, h), dim=-1)

    def _decode_distances(self, distances: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """torchvision's ``BoxLinearCoder.decode`` on [B, N, 4] distances, as cx, cy, w, h."""
        ctr_x = 0.5 * (anchors[:, 0] + anchors[:, 2])
        ctr_y = 0.5 * (anchors[:, 1] + anchors[:, 3])
        if self.normalize_by_size:
            widths = anchors[:, 2] - anchors[:, 0]
            heights = anchors[:, 3] - anchors[:, 1]
            distances = distances * torch.stack((widths, heights, widths, heights), dim=-1)
        x1 = ctr_x - distances[..., 0]
        y1 = ctr_y - distances[..., 1]
        x2 = ctr_x + distances[..., 2]
        y2 = ctr_y + distances[..., 3]
        return torch.stack((0.5 * (x1 + x2), 0.5 * (y1 + y2), x2 - x1, y2 - y1), dim=-1)


def torchvision_spec(name: str) -> ModelSpec:
    """The detstream contract of a wrapped torchvision model (no model is built)."""
    entry = _entry(name)
    size = entry.input_size
    return ModelSpec(name=f"torchvision-{entry.name}", class_names=COCO80,
                     input_size=(size, size), layout="xywh_scores", colour="rgb",
                     scale=1.0 / 255.0, mean=entry.mean, std=entry.std, letterbox="center",
                     stride=entry.stride)


def build_torchvision_detector(name: str, state_dict: Mapping[str, torch.Tensor] | None = None
                               ) -> tuple[TorchvisionDetector, ModelSpec]:
    """Build a wrapped torchvision detector in eval mode, and its spec.

    Args:
        name: a key of :data:`TORCHVISION_MODELS`.
        state_dict: the torchvision model's weights (its own keys, e.g. from
            ``TorchvisionModel.weights_entry().get_state_dict()``), loaded strictly; ``None``
            keeps the random initialisation. Nothing is downloaded here.

    Returns:
        ``(wrapper, spec)``: the wrapper outputs the ``xywh_scores`` layout for ``spec``.

    Raises:
        UserInputError: unknown ``name``, or a ``state_dict`` that does not fit the model.
    """
    import torchvision.models.detection as detection

    entry = _entry(name)
    model = getattr(detection, entry.builder)(weights=None, weights_backbone=None)
    # The model's own normalisation must be what the spec asks our preprocessing to do.
    transform = model.transform
    if (tuple(transform.image_mean), tuple(transform.image_std)) != (entry.mean, entry.std):
        raise RuntimeError(f"{name}: torchvision normalises with mean {transform.image_mean}, "
                           f"std {transform.image_std}; this table says {entry.mean}, "
                           f"{entry.std}")
    if state_dict is not None:
        try:
            # Pretrained files come from frozen batch norms (no num_batches_tracked); the
            # BatchNorm2d layers of a model built without weights fill that key in themselves.
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserInputError(f"the weights given do not fit torchvision's {name}: "
                                 f"{first}") from None
    model.eval()
    spec = torchvision_spec(name)
    wrapper = TorchvisionDetector(model, entry.kind, spec.input_size).eval()
    return wrapper, spec


def export_torchvision_onnx(name: str, out_path: str | Path,
                            state_dict: Mapping[str, torch.Tensor] | None = None,
                            max_batch: int = 1) -> tuple[Path, ModelSpec]:
    """Export a wrapped torchvision detector to ONNX (FP32, opset 17) with its spec.

    As :func:`detstream.engines.export.onnx.export_onnx` does for detstream's models: the
    TorchScript
    exporter, a dynamic batch axis when ``max_batch > 1``, the contract in the metadata (so
    :func:`detstream.engines.zoo.onnx_import.inspect_onnx` reads it back), written atomically.

    Args:
        name: a key of :data:`TORCHVISION_MODELS`.
        out_path: the ``.onnx`` file to write (its folder is created).
        state_dict: the torchvision weights, or ``None`` for random ones.
        max_batch: 1 for a fixed batch of one; more for a dynamic batch dimension.

    Returns:
        ``(path, spec)``: the file written and the contract it carries.
    """
    if max_batch < 1:
        raise UserInputError(f"the batch size must be at least 1, got {max_batch}")
    out = Path(out_path)
    net, spec = build_torchvision_detector(name, state_dict)
    height, width = spec.input_size
    dummy = torch.zeros(min(max_batch, 2), 3, height, width)
    write_traced_onnx(net, dummy, out, spec, {
        "precision": "fp32", "max_batch": max_batch, "architecture": name,
        "source": "torchvision", "weights": "supplied" if state_dict is not None else "random"})
    return out, spec


__all__ = [
    "COCO80",
    "TORCHVISION_LABELS",
    "TORCHVISION_MODELS",
    "TorchvisionDetector",
    "TorchvisionModel",
    "build_torchvision_detector",
    "export_torchvision_onnx",
    "torchvision_spec",
]
