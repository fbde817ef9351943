"""The types every part shares: :class:`Detections` and :class:`ModelSpec`.

One ``Detections`` flows through the whole house: post-processing produces it, trackers add
track ids, drawing and sinks read it, and the synthetic world uses it for ground truth.
Arrays are parallel (one row per box). Records are treated as immutable: stages return new
records instead of mutating their input.

A ``ModelSpec`` is what a model needs from the outside world (class names, input size, output
layout, preprocessing contract); it travels in checkpoint sidecars and ONNX metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detstream.engines.boxes import xyxy_to_tlwh
from detstream.engines.errors import UserInputError

#: The largest square model input accepted (``--imgsz``): 4096 x 4096 already needs ~200 MB per
#: FP32 image before the first layer; beyond it a typo would ask for terabytes.
MAX_INPUT_SIZE = 4096


def check_input_size(size: int, stride: int = 32) -> int:
    """``size`` when it is a usable square input size: a multiple of ``stride`` from ``stride``
    to :data:`MAX_INPUT_SIZE`.

    Raises:
        UserInputError: naming ``--imgsz`` and the sizes that work.
    """
    if not stride <= size <= MAX_INPUT_SIZE or size % stride:
        raise UserInputError(f"--imgsz {size}: use a multiple of {stride} from {stride} to "
                             f"{MAX_INPUT_SIZE} (e.g. 320, 416, 640)")
    return int(size)


def _as_array(name: str, value: Any, dtype: type, shape_tail: tuple[int, ...]) -> np.ndarray:
    array = np.ascontiguousarray(value, dtype=dtype)
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        expected = "[N" + "".join(f", {d}" for d in shape_tail) + "]"
        raise ValueError(f"Detections.{name}: expected shape {expected}, got {list(array.shape)}")
    return array


@dataclass(frozen=True, eq=False)
class Detections:
    """Boxes found in one frame, with their scores, classes and (optionally) track ids.

    Attributes:
        boxes: float32 [N, 4], ``xyxy`` in frame pixels; ``x2``/``y2`` are exclusive edges, so a
            box covering pixel columns 10..19 is ``x1=10, x2=20``.
        scores: float32 [N], confidence in [0, 1].
        class_ids: int32 [N], index into ``class_names``.
        track_ids: int64 [N], persistent identity, ``-1`` while untracked. 64 bits because a
            tracker numbering ten new tracks a second passes 2**31 in under seven years of
            one stream, and a stream's ids must never wrap into each other.
        class_names: names of the classes, indexed by ``class_ids``.
        data: extra per-box arrays (first dimension N), e.g. ``visibility`` in ground truth.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    class_names: tuple[str, ...] = ()
    data: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        boxes = _as_array("boxes", self.boxes, np.float32, (4,))
        n = len(boxes)
        scores = _as_array("scores", self.scores, np.float32, ())
        class_ids = _as_array("class_ids", self.class_ids, np.int32, ())
        track_ids = self.track_ids
        if track_ids is None or (len(track_ids) == 0 and n > 0):
            track_ids = np.full(n, -1, np.int64)
        track_ids = _as_array("track_ids", track_ids, np.int64, ())
        for name, arr in (("scores", scores), ("class_ids", class_ids), ("track_ids", track_ids)):
            if len(arr) != n:
                raise ValueError(f"Detections.{name}: expected {n} rows like boxes, got {len(arr)}")
        data = {}
        for key, value in dict(self.data).items():
            arr = np.asarray(value)
            if arr.ndim == 0 or len(arr) != n:
                raise ValueError(f"Detections.data[{key!r}]: expected {n} rows, got {arr.shape}")
            data[key] = arr
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "class_ids", class_ids)
        object.__setattr__(self, "track_ids", track_ids)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "data", data)

    @classmethod
    def empty(cls, class_names: Sequence[str] = ()) -> Detections:
        """A record with no boxes."""
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int32),
            track_ids=np.zeros(0, np.int64),
            class_names=tuple(class_names),
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Any) -> Detections:
        """Select rows with a boolean mask, an index array, a slice or an int."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            boxes=self.boxes[index],
            scores=self.scores[index],
            class_ids=self.class_ids[index],
            track_ids=self.track_ids[index],
            class_names=self.class_names,
            data={k: v[index] for k, v in self.data.items()},
        )

    def replace(self, **changes: Any) -> Detections:
        """A copy with some fields replaced (e.g. ``track_ids=...``)."""
        fields = {
            "boxes": self.boxes,
            "scores": self.scores,
            "class_ids": self.class_ids,
            "track_ids": self.track_ids,
            "class_names": self.class_names,
            "data": self.data,
        }
        fields.update(changes)
        return Detections(**fields)

    @property
    def labels(self) -> list[str]:
        """Class name of each box (the id as text when no names are known)."""
        names = self.class_names
        return [names[c] if 0 <= c < len(names) else str(c) for c in self.class_ids.tolist()]

    @property
    def xywh(self) -> np.ndarray:
        """Boxes as top-left x, y, width, height (``tlwh``): float32 [N, 4]."""
        return xyxy_to_tlwh(self.boxes)

    @staticmethod
    def merge(records: Sequence[Detections]) -> Detections:
        """Concatenate records (empty ones included); data keys must agree."""
        records = list(records)
        if not records:
            return Detections.empty()
        names = next((r.class_names for r in records if r.class_names), ())
        keys = set(records[0].data)
        if any(set(r.data) != keys for r in records):
            raise ValueError("Detections.merge: records carry different data keys")
        return Detections(
            boxes=np.concatenate([r.boxes for r in records]),
            scores=np.concatenate([r.scores for r in records]),
            class_ids=np.concatenate([r.class_ids for r in records]),
            track_ids=np.concatenate([r.track_ids for r in records]),
            class_names=names,
            data={k: np.concatenate([r.data[k] for r in records]) for k in keys},
        )


#: Output layouts the decoders understand.
#: ``xywh_scores``: [B, 4+C, N], box centre/size in input pixels then per-class scores
#: (Ultralytics YOLOv8/YOLO11 exports and detstream's own models), then ``embed_dim`` rows of
#: appearance embedding when the model has them.
LAYOUTS: tuple[str, ...] = ("xywh_scores", "yolov5", "yolox")


@dataclass(frozen=True)
class ModelSpec:
    """The contract between a model and the code around it.

    Attributes:
        name: model name, e.g. ``detstream-n``.
        class_names: class names, indexed by class id.
        input_size: ``(height, width)`` the model takes, in pixels.
        layout: raw output layout, one of :data:`LAYOUTS`.
        colour: channel order the model expects, ``rgb`` or ``bgr``.
        scale: multiplier applied to 0..255 pixel values (``1/255`` or ``1``).
        mean, std: per-channel normalisation after scaling, in the model's channel order.
        letterbox: where the resized image sits in the padded input, ``center`` or ``topleft``.
        pad_value: value (0..255) of the letterbox padding.
        stride: largest stride; dynamic input sizes must be multiples of it.
        embed_dim: rows of unit-length appearance embedding after the class scores (layout
            ``xywh_scores`` only: ``[B, 4 + C + D, N]``); post-processing puts each kept box's
            vector in ``Detections.data["embedding"]``. 0: the model has no embedding head.
    """

    name: str
    class_names: tuple[str, ...]
    input_size: tuple[int, int] = (320, 320)
    layout: str = "xywh_scores"
    colour: str = "rgb"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    letterbox: str = "center"
    pad_value: int = 114
    stride: int = 32
    embed_dim: int = 0

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"ModelSpec.layout: expected one of {LAYOUTS}, got {self.layout!r}")
        if self.embed_dim < 0 or (self.embed_dim and self.layout != "xywh_scores"):
            raise ValueError(f"ModelSpec.embed_dim: {self.embed_dim} embedding rows need "
                             "layout 'xywh_scores' and a size of 0 or more")
        if self.colour not in ("rgb", "bgr"):
            raise ValueError(f"ModelSpec.colour: expected 'rgb' or 'bgr', got {self.colour!r}")
        if self.letterbox not in ("center", "topleft"):
            raise ValueError(f"ModelSpec.letterbox: expected 'center' or 'topleft', "
                             f"got {self.letterbox!r}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (lists for tuples)."""
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "input_size": list(self.input_size),
            "layout": self.layout,
            "colour": self.colour,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "letterbox": self.letterbox,
            "pad_value": self.pad_value,
            "stride": self.stride,
            "embed_dim": self.embed_dim,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, missing ones take defaults."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
