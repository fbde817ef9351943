"""Frames in, :class:`~detstream.engines.spec.Detections` out: preprocess → infer → decode + NMS.

The three steps are separate methods so a pipeline can run each in its own stage; calling the
predictor does all three.

Example:
    >>> from detstream import Predictor, open_backend
    >>> predictor = Predictor(open_backend("default"), conf=0.3)
    >>> detections = predictor([frame])[0]  # frame: uint8 [H, W, 3] BGR
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from detstream.engines.process.decode import (
    DecodeConfig,
    decode,
    decode_embedded,
    to_detections,
)
from detstream.engines.process.letterbox import Letterbox
from detstream.engines.process.preprocess import Preprocessor
from detstream.engines.process.thresholds import DEFAULT_CONF, DEFAULT_IOU
from detstream.engines.runtime.base import Backend
from detstream.engines.spec import Detections


class Predictor:
    """Run a backend on frames with the model's own pre- and post-processing.

    Args:
        backend: a loaded model (:func:`detstream.engines.runtime.select.open_backend`).
        conf, iou, max_det, classes, agnostic: post-processing (:class:`DecodeConfig`).
        frame_colour: ``bgr`` (OpenCV, PyAV ``bgr24``) or ``rgb`` frames.
    """

    def __init__(self, backend: Backend, conf: float = DEFAULT_CONF, iou: float = DEFAULT_IOU,
                 max_det: int = 300, classes: Sequence[int] | None = None,
                 agnostic: bool = False, frame_colour: str = "bgr") -> None:
        self.backend = backend
        self.spec = backend.spec
        self.decode_config = DecodeConfig(conf=conf, iou=iou, max_det=max_det,
                                          classes=tuple(classes) if classes else None,
                                          agnostic=agnostic)
        self.preprocessor = Preprocessor(self.spec, backend.device, backend.dtype, frame_colour)

    def preprocess(self, frames: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[Letterbox]]:
        return self.preprocessor(frames)

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        return self.backend.infer(batch)

    def postprocess(self, raw: torch.Tensor, letterboxes: Sequence[Letterbox]
                    ) -> list[Detections]:
        spec = self.spec
        if spec.embed_dim:
            embedded = decode_embedded(raw.float(), spec.num_classes, self.decode_config,
                                       spec.input_size)
            return [to_detections(boxes, scores, classes, box, spec.class_names, vectors)
                    for ((boxes, scores, classes), vectors), box
                    in zip(embedded, letterboxes, strict=True)]
        decoded = decode(raw.float(), spec.layout, self.decode_config, spec.input_size)
        return [to_detections(boxes, scores, classes, box, spec.class_names)
                for (boxes, scores, classes), box in zip(decoded, letterboxes, strict=True)]

    def __call__(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each frame, in order (batches of at most ``backend.max_batch``)."""
        results: list[Detections] = []
        step = max(1, self.backend.max_batch)
        for start in range(0, len(frames), step):
            batch, boxes = self.preprocess(frames[start:start + step])
            results.extend(self.postprocess(self.infer(batch), boxes))
        return results
