"""The packet that carries one frame through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detstream.engines.spec import Detections


@dataclass
class FramePacket:
    """One frame and everything the stages add to it.

    Attributes:
        stream_id: which source it came from (one runner may serve several).
        index: 0-based frame number within its stream (counts dropped frames too).
        pts: presentation time in seconds on the source's clock (``None`` if unknown).
        captured: ``time.perf_counter()`` when the frame was decoded/captured.
        image: uint8 [H, W, 3] BGR.
        truth: ground truth when the source knows it (the synthetic world).
        found: the detector's own output on this frame (before tracking).
        detections: what the pipeline reports: the tracker's output, or the detector's
            when there is no tracker (frame pixels).
        events: the tracks that started, were lost, recovered or ended on this frame
            (:class:`~detstream.stream.track.base.TrackEvent`; empty without a tracker).
        annotated: the drawn frame, for the outputs.
        timings: stage name → milliseconds spent on this packet.
        done: ``time.perf_counter()`` when the last output finished with it.
        detect: whether the detector runs on this frame (``--detect-every``).
        tag: the source's label for the frame, unchanged (see
        :class:`~detstream.stream.sources.Frame`).
        predictor: the predictor that preprocessed it; inference and post-processing use the
            same one, so a model swapped while the pipeline runs never mixes two models.
        batch, letterbox, pending, raw: working data between preprocess, inference (the
            submitted request's future) and post-processing.
    """

    stream_id: int
    index: int
    pts: float | None
    captured: float
    image: np.ndarray
    truth: Detections | None = None
    found: Detections | None = None
    detections: Detections | None = None
    events: list[Any] = field(default_factory=list)
    annotated: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    done: float | None = None
    detect: bool = True
    tag: Any = None
    predictor: Any = None
    batch: Any = None
    letterbox: Any = None
    pending: Any = None
    raw: Any = None
