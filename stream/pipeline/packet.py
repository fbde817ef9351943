"""The packet that carries one frame through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from detstream.engines.spec import Detections

if TYPE_CHECKING:  # annotations only: sinks and tests import the packet without torch or cv2
    from concurrent.futures import Future

    import torch

    from detstream.engines.predict import Predictor
    from detstream.engines.process.letterbox import Letterbox
    from detstream.stream.pipeline.service import InferenceResult
    from detstream.stream.track.base import TrackEvent


@dataclass
class FramePacket:
    """One frame and everything the stages add to it.

    ``predictor``, ``batch``, ``letterbox``, ``pending`` and ``raw`` are set by the stages as
    the frame passes; ``batch``, ``pending`` and ``raw`` are working data, cleared by the stage
    that consumes them. All but ``predictor`` stay ``None`` on frames that skip the detector.

    Attributes:
        stream_id: which source it came from (one runner may serve several).
        index: 0-based frame number within its stream (counts dropped frames too).
        pts: presentation time in seconds on the source's clock (``None`` if unknown).
        captured: ``time.perf_counter()`` when the frame was decoded/captured.
        image: uint8 [H, W, 3] BGR.
        truth: ground truth when the source knows it (the synthetic world).
        found: the detector's own output on this frame (before tracking), when it was ready
            by the time the frame was tracked.
        found_late: the detector's output on earlier frames that came back while this one
            was tracked (``(index, detections)``; live sources at the camera's rate, whose
            detections arrive a few frames late).
        detections: what the pipeline reports: the tracker's output, or the detector's
            when there is no tracker (frame pixels).
        events: the tracks that started, were lost, recovered or ended on this frame
            (empty without a tracker).
        analytics: the counting lines' and watched areas' counts after this frame
            (:meth:`~detstream.stream.analytics.Rules.state`), for the progress journal;
            ``None`` without rules.
        annotated: the drawn frame, uint8 [H, W, 3] BGR, for the outputs.
        timings: stage name → milliseconds spent on this packet.
        done: ``time.perf_counter()`` when the last output finished with it.
        detect: whether the detector runs on this frame (``--detect-every``).
        tag: the source's label for the frame, unchanged: whatever its producer chose (see
            :class:`~detstream.stream.sources.base.Frame`), e.g. a pushed frame's int id.
        predictor: the predictor that preprocessed it (set by the preprocess stage);
            inference and post-processing use the same one, so a model swapped while the
            pipeline runs never mixes two models.
        batch: the preprocessed model input, float [1, 3, S, S] in the backend's dtype and on
            its device; from preprocess until it is submitted to inference.
        letterbox: how the frame was placed in the model input, to map the decoded boxes
            back to frame pixels.
        pending: the submitted inference request, resolving to the raw output and its
            timing; waited for in the track stage.
        raw: the model's raw output for this frame, until post-processing decodes it.
    """

    stream_id: int
    index: int
    pts: float | None
    captured: float
    image: np.ndarray
    truth: Detections | None = None
    found: Detections | None = None
    found_late: list[tuple[int, Detections]] = field(default_factory=list)
    detections: Detections | None = None
    events: list[TrackEvent] = field(default_factory=list)
    analytics: dict | None = None
    annotated: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    done: float | None = None
    detect: bool = True
    tag: Any = None  # as Frame.tag: the producer's own value; the pipeline only carries it
    predictor: Predictor | None = None
    batch: torch.Tensor | None = None
    letterbox: Letterbox | None = None
    pending: Future[InferenceResult] | None = None
    raw: torch.Tensor | None = None
