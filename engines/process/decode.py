"""Decode raw model outputs into boxes, then into :class:`~detstream.engines.spec.Detections`.

Every layout goes through the same fixed chain, and every step handles zero boxes:

    score filter → top-k → decode → clip → batched NMS → cap

A layout decoder (one function per entry of :data:`detstream.engines.spec.LAYOUTS`) turns one raw
output
tensor into per-anchor candidates and then hands them to the shared steps
(:func:`select_candidates` and :func:`suppress`), so adding a layout means adding one function
and one :data:`DECODERS` entry. Every decoder returns, per image, a :data:`Decoded` tuple in
*model-input* pixels; :func:`to_detections` maps it back to frame pixels.

All maths is torch ops on the raw tensor's own device (CPU or CUDA); nothing leaves the device
until :func:`to_detections`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import batched_nms, nms

from detstream.engines.boxes import clip_xyxy, cxcywh_to_xyxy
from detstream.engines.errors import UserInputError
from detstream.engines.process.letterbox import Letterbox
from detstream.engines.process.thresholds import DEFAULT_CONF, DEFAULT_IOU
from detstream.engines.spec import Detections

#: One image's result: ``(boxes, scores, class_ids)``.
#: ``boxes`` float32 [n, 4] ``xyxy`` in model-input pixels, ``scores`` float32 [n] in [0, 1]
#: sorted high to low, ``class_ids`` int64 [n]; ``n`` may be 0.
Decoded = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DecodeConfig:
    """Settings of the post-processing chain.

    Attributes:
        conf: keep anchors whose best class score is strictly above this, in [0, 1].
        iou: NMS overlap threshold in [0, 1]; a box overlapping a better one by more is dropped.
        max_det: most boxes kept per image, after NMS.
        classes: keep only these class ids (applied after choosing each anchor's best class,
            so the output is a subset of the unfiltered output); ``None`` keeps all.
        agnostic: run NMS across classes (a box suppresses overlapping boxes of any class).
        pre_nms_topk: most candidates, by score, handed to NMS per image.
    """

    conf: float = DEFAULT_CONF
    iou: float = DEFAULT_IOU
    max_det: int = 300
    classes: tuple[int, ...] | None = None
    agnostic: bool = False
    pre_nms_topk: int = 3000

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf <= 1.0:
            raise UserInputError(f"DecodeConfig.conf must be in [0, 1], got {self.conf}")
        if not 0.0 <= self.iou <= 1.0:
            raise UserInputError(f"DecodeConfig.iou must be in [0, 1], got {self.iou}")
        if self.max_det < 1:
            raise UserInputError(f"DecodeConfig.max_det must be at least 1, got {self.max_det}")
        if self.pre_nms_topk < 1:
            raise UserInputError(
                f"DecodeConfig.pre_nms_topk must be at least 1, got {self.pre_nms_topk}")
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))


def select_candidates(scores: torch.Tensor, class_ids: torch.Tensor,
                      cfg: DecodeConfig) -> torch.Tensor:
    """Score filter, class filter and top-k over one image's anchors.

    Args:
        scores: float [N], each anchor's best class score.
        class_ids: int64 [N], each anchor's best class.
        cfg: thresholds (``conf``, ``classes``, ``pre_nms_topk``).

    Returns:
        int64 [n] indices into the N anchors, ``n <= cfg.pre_nms_topk`` (may be 0); when the
        top-k cut applies they are ordered by score, high to low.
    """
    keep = scores > cfg.conf
    if cfg.classes is not None:
        allowed = torch.tensor(cfg.classes, dtype=class_ids.dtype, device=class_ids.device)
        keep &= torch.isin(class_ids, allowed)
    index = keep.nonzero().squeeze(1)
    if index.numel() > cfg.pre_nms_topk:
        best = scores[index].topk(cfg.pre_nms_topk).indices
        index = index[best]
    return index


def _corners(boxes: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """The decode and clip steps: candidates' ``cx, cy, w, h`` (float [n, 4]) as ``xyxy``
    clipped to an input of ``size`` = (height, width); ``None`` leaves them unclipped
    (:func:`to_detections` clips to the frame in any case)."""
    boxes = cxcywh_to_xyxy(boxes)
    if size is None:
        return boxes
    height, width = size
    return clip_xyxy(boxes, width, height)


def suppress(boxes: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor,
             cfg: DecodeConfig) -> Decoded:
    """Batched NMS (class-aware unless ``cfg.agnostic``), then the ``max_det`` cap.

    Args:
        boxes: float [n, 4] ``xyxy`` candidates, any pixel frame.
        scores: float [n] their scores.
        class_ids: int64 [n] their classes.
        cfg: ``iou``, ``agnostic`` and ``max_det``.

    Returns:
        The surviving ``(boxes, scores, class_ids)``, scores high to low, at most ``max_det``.
    """
    keep = _survivors(boxes, scores, class_ids, cfg)
    return boxes.float()[keep], scores.float()[keep], class_ids[keep]


def _survivors(boxes: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor,
               cfg: DecodeConfig) -> torch.Tensor:
    """Indices of the candidates :func:`suppress` keeps, in its order."""
    boxes, scores = boxes.float(), scores.float()
    if cfg.agnostic:
        keep = nms(boxes, scores, cfg.iou)
    else:
        keep = batched_nms(boxes, scores, class_ids, cfg.iou)
    return keep[:cfg.max_det]


def _check_raw(raw: torch.Tensor, layout: str, min_channels: int, expected: str) -> None:
    """Raise a clear error when ``raw`` cannot be the named layout."""
    if raw.ndim != 3 or raw.shape[1] < min_channels:
        raise UserInputError(
            f"decode {layout}: expected a raw output of shape {expected}, got "
            f"{list(raw.shape)}; check that ModelSpec.layout matches the model")


def decode_xywh_scores(raw: torch.Tensor, cfg: DecodeConfig,
                       input_size: tuple[int, int] | None = None) -> list[Decoded]:
    """Decode the ``xywh_scores`` layout (Ultralytics YOLOv8/YOLO11 exports, detstream models).

    One label per anchor: its best class (no multi-label).

    Args:
        raw: float [B, 4 + C, N]: box centre x, centre y, width, height in model-input pixels,
            then C per-class scores in [0, 1]. Any float dtype, any device.
        cfg: the post-processing settings.
        input_size: model input (height, width); when given, boxes are clipped to it before NMS.

    Returns:
        B :data:`Decoded` tuples on ``raw``'s device, boxes ``xyxy`` in model-input pixels.

    Raises:
        UserInputError: ``raw`` is not 3-D with at least 5 channels.
    """
    _check_raw(raw, "xywh_scores", 5, "[B, 4 + C, N]")
    return [_xywh_scores_image(image, raw.shape[1] - 4, cfg, input_size)[0] for image in raw]


def _xywh_scores_image(image: torch.Tensor, num_classes: int, cfg: DecodeConfig,
                       input_size: tuple[int, int] | None) -> tuple[Decoded, torch.Tensor]:
    """One image of the ``xywh_scores`` layout (rows after the class scores are ignored):
    its :data:`Decoded` tuple and the anchor index of every kept box."""
    best_scores, best_classes = image[4:4 + num_classes].max(dim=0)
    index = select_candidates(best_scores, best_classes, cfg)
    boxes = _corners(image[:4, index].T, input_size)
    scores, classes = best_scores[index], best_classes[index]
    keep = _survivors(boxes, scores, classes, cfg)
    return (boxes.float()[keep], scores.float()[keep], classes[keep]), index[keep]


def decode_embedded(raw: torch.Tensor, num_classes: int, cfg: DecodeConfig,
                    input_size: tuple[int, int] | None = None
                    ) -> list[tuple[Decoded, torch.Tensor]]:
    """Decode the ``xywh_scores`` layout of a model with an embedding head.

    Args:
        raw: float [B, 4 + C + D, N]: as for :func:`decode_xywh_scores`, then D rows of
            appearance embedding per anchor.
        num_classes: C.
        cfg, input_size: as for :func:`decode_xywh_scores`.

    Returns:
        Per image, the :data:`Decoded` tuple and float32 [n, D] embeddings of its kept boxes,
        re-normalised to unit length (an FP16 engine's rows are only nearly so).

    Raises:
        UserInputError: ``raw`` has no embedding rows after the C class scores.
    """
    _check_raw(raw, "xywh_scores", 4 + num_classes + 1, f"[B, 4 + {num_classes} + D, N]")
    results = []
    for image in raw:
        decoded, anchors = _xywh_scores_image(image, num_classes, cfg, input_size)
        vectors = image[4 + num_classes:, anchors].T.float()
        results.append((decoded, torch.nn.functional.normalize(vectors, dim=1)))
    return results


def _decode_objectness(raw: torch.Tensor, cfg: DecodeConfig,
                       input_size: tuple[int, int] | None) -> list[Decoded]:
    """Shared by ``yolov5`` and ``yolox``: rows ``cx, cy, w, h, obj, cls...`` in input pixels
    with sigmoid-ed objectness and class scores; an anchor's score is ``obj * cls``."""
    results: list[Decoded] = []
    for image in raw:
        # score <= objectness, so anchors at or below ``conf`` by objectness cannot survive.
        rows = (image[:, 4] > cfg.conf).nonzero().squeeze(1)
        candidates = image[rows]
        best_scores, best_classes = (candidates[:, 5:] * candidates[:, 4:5]).max(dim=1)
        index = select_candidates(best_scores, best_classes, cfg)
        boxes = _corners(candidates[index, :4], input_size)
        results.append(suppress(boxes, best_scores[index], best_classes[index], cfg))
    return results


def decode_yolov5(raw: torch.Tensor, cfg: DecodeConfig,
                  input_size: tuple[int, int] | None = None) -> list[Decoded]:
    """Decode the ``yolov5`` layout (YOLOv5 and YOLOv7 exports).

    Args:
        raw: float [B, N, 5 + C]: box centre x, centre y, width, height in model-input pixels,
            objectness, then C class scores, all scores already in [0, 1].
        cfg, input_size: as for :func:`decode_xywh_scores`.
    """
    if raw.ndim != 3 or raw.shape[2] < 6:
        raise UserInputError(f"decode yolov5: expected a raw output of shape [B, N, 5 + C], "
                             f"got {list(raw.shape)}; check that the layout matches the model")
    return _decode_objectness(raw, cfg, input_size)


YOLOX_STRIDES = (8, 16, 32)
_yolox_grids: dict[tuple[tuple[int, int], str], tuple[torch.Tensor, torch.Tensor]] = {}


def _yolox_grid(input_size: tuple[int, int], device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid cell corners (float [N, 2]) and strides (float [N, 1]) of a YOLOX output."""
    key = (tuple(input_size), str(device))
    if key not in _yolox_grids:
        cells, strides = [], []
        for stride in YOLOX_STRIDES:
            h, w = input_size[0] // stride, input_size[1] // stride
            gy, gx = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                                    indexing="ij")
            cells.append(torch.stack([gx, gy], dim=-1).reshape(-1, 2).float())
            strides.append(torch.full((h * w, 1), float(stride), device=device))
        _yolox_grids[key] = (torch.cat(cells), torch.cat(strides))
    return _yolox_grids[key]


def decode_yolox(raw: torch.Tensor, cfg: DecodeConfig,
                 input_size: tuple[int, int] | None = None) -> list[Decoded]:
    """Decode the ``yolox`` layout (Megvii YOLOX exports without decoding in the graph).

    Args:
        raw: float [B, N, 5 + C]: per grid cell at strides 8, 16, 32 (row-major per level),
            ``tx, ty, tw, th`` then sigmoid-ed objectness and class scores. The box is
            ``cx = (tx + gx) * s``, ``w = exp(tw) * s`` in model-input pixels.
        cfg: the post-processing settings.
        input_size: model input (height, width); required, it fixes the grid.
    """
    if input_size is None:
        raise UserInputError("decode yolox: the model input size is needed to build its grid")
    cells, strides = _yolox_grid(input_size, raw.device)
    if raw.ndim != 3 or raw.shape[2] < 6 or raw.shape[1] != len(cells):
        raise UserInputError(
            f"decode yolox: expected [B, {len(cells)}, 5 + C] for input {input_size[1]}x"
            f"{input_size[0]}, got {list(raw.shape)}; check --imgsz and the layout")
    raw = raw.float()
    centres = (raw[..., :2] + cells) * strides
    sizes = raw[..., 2:4].exp() * strides
    return _decode_objectness(torch.cat([centres, sizes, raw[..., 4:]], dim=-1), cfg,
                              input_size)


#: A layout decoder: ``(raw, cfg, input_size) -> list[Decoded]``.
Decoder = Callable[[torch.Tensor, DecodeConfig, tuple[int, int] | None], list[Decoded]]

#: Implemented decoders by layout name (see :data:`detstream.engines.spec.LAYOUTS`).
DECODERS: Mapping[str, Decoder] = {
    "xywh_scores": decode_xywh_scores,
    "yolov5": decode_yolov5,
    "yolox": decode_yolox,
}


def decode(raw: torch.Tensor, layout: str, cfg: DecodeConfig,
           input_size: tuple[int, int] | None = None) -> list[Decoded]:
    """Decode ``raw`` with the decoder registered for ``layout``.

    Raises:
        UserInputError: no decoder is implemented for ``layout``.
    """
    decoder = DECODERS.get(layout)
    if decoder is None:
        raise UserInputError(
            f"no decoder for output layout {layout!r}; implemented: {sorted(DECODERS)}")
    return decoder(raw, cfg, input_size)


def to_detections(boxes: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor,
                  letterbox: Letterbox, class_names: Sequence[str],
                  embeddings: torch.Tensor | None = None) -> Detections:
    """One image's decoded boxes as a :class:`Detections` record in frame pixels.

    Args:
        boxes: float [n, 4] ``xyxy`` in model-input pixels (any device).
        scores: float [n] in [0, 1].
        class_ids: int [n].
        letterbox: how the frame was placed in the model input; boxes are mapped back, and
            clipped to the frame, with :meth:`Letterbox.to_frame`.
        class_names: names indexed by class id.
        embeddings: float [n, D] appearance embeddings of the boxes, kept as
            ``data["embedding"]`` (float32).

    Returns:
        Detections with float32 [n, 4] ``xyxy`` frame-pixel boxes, untracked (ids ``-1``).
    """
    data = {} if embeddings is None else {"embedding": _to_numpy(embeddings, np.float32)}
    return Detections(
        boxes=letterbox.to_frame(_to_numpy(boxes, np.float32).reshape(-1, 4)),
        scores=_to_numpy(scores, np.float32),
        class_ids=_to_numpy(class_ids, np.int32),
        class_names=tuple(class_names),
        data=data,
    )


def _to_numpy(tensor: torch.Tensor, dtype: type) -> np.ndarray:
    """A host numpy copy of ``tensor`` in ``dtype`` (half and bfloat16 go through float32)."""
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.float()
    return tensor.numpy().astype(dtype)
