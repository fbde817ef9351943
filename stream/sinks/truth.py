"""Scores against ground truth, for sources that know it (the synthetic world): detection
mAP (faster-coco-eval) of the detector's output and MOT scores (TrackEval) of the tracks.

Both need every frame they score at once (COCO ranks all detections by score; HOTA aligns
identities over the whole sequence), so a run longer than the window is scored on its most
recent frames: memory stays bounded however long the source runs, and the report says which
frames were scored.
"""

from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path

import numpy as np

from detstream.engines.data.mot import MotWriter, SeqInfo, write_seqinfo
from detstream.engines.metrics.coco import DetectionEvaluator
from detstream.engines.metrics.mot import evaluate_mot
from detstream.engines.spec import Detections
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.sinks.base import Sink

#: Truth boxes less visible than this are not expected from a detector (as in the datasets).
MIN_VISIBILITY = 0.3
#: Frames kept for scoring: the most recent ones (100 s at 30 fps, about 5 MB).
TRUTH_WINDOW = 3000


def _lean(detections: Detections | None) -> Detections | None:
    """``detections`` without their extra per-box arrays (a model's appearance embeddings
    would multiply the window's memory; scoring needs boxes, scores, classes and ids)."""
    if detections is None or not detections.data:
        return detections
    return detections.replace(data={})


class TruthScorer(Sink):
    """Collects truth, detections and tracks per frame; :meth:`scores` computes the figures
    over the last ``window`` frames."""

    name = "truth"

    def __init__(self, class_names: tuple[str, ...], window: int = TRUTH_WINDOW) -> None:
        self.class_names = tuple(class_names)
        self.window = max(1, window)
        self.frames: deque[list] = \
            deque(maxlen=self.window)
        self.seen = 0

    def write(self, packet: FramePacket) -> None:
        if packet.truth is not None and packet.detections is not None:
            self.frames.append([packet.index, packet.truth, _lean(packet.found),
                                _lean(packet.detections)])
            self.seen += 1
        for index, found in packet.found_late:  # detections that came back a few frames late
            for frame in reversed(self.frames):
                if frame[0] == index:
                    frame[2] = _lean(found)
                    break
                if frame[0] < index:
                    break

    def scores(self) -> dict | None:
        """``{"detection": {...}, "tracking": {...}}``, or None without truth."""
        if not self.frames:
            return None
        evaluator = DetectionEvaluator(self.class_names)
        for index, truth, found, _ in self.frames:
            if found is None:  # a frame the detector skipped (--detect-every)
                continue
            visible = truth[truth.data["visibility"] >= MIN_VISIBILITY]
            gt = Detections(boxes=visible.boxes, scores=np.ones(len(visible)),
                            class_ids=visible.class_ids, class_names=self.class_names)
            evaluator.add(gt, found, image_id=index)
        detection = evaluator.compute()
        result = {"frames": {"seen": self.seen, "scored": len(self.frames),
                             "first": self.frames[0][0], "last": self.frames[-1][0]},
                  "detection": {"map50": detection.map50, "map50_95": detection.map50_95,
                                "precision": detection.precision, "recall": detection.recall,
                                "frames": detection.images}}
        tracked = any(len(tracks) and (tracks.track_ids >= 0).any()
                      for _, _, _, tracks in self.frames)
        if tracked:
            with tempfile.TemporaryDirectory(prefix="detstream-truth-") as tmp:
                gt_path, pred_path = Path(tmp) / "gt.txt", Path(tmp) / "pred.txt"
                with MotWriter(gt_path, ground_truth=True) as gt, MotWriter(pred_path) as pred:
                    for index, truth, _, tracks in self.frames:
                        gt.write(index + 1, truth)
                        pred.write(index + 1, tracks[tracks.track_ids >= 0])
                # The sequence's length, which the truth alone does not tell when its last
                # frames are empty (a static camera's quiet spell).
                write_seqinfo(Path(tmp) / "seqinfo.ini",
                              SeqInfo("truth", 30.0, self.frames[-1][0] + 1, 0, 0))
                combined, _ = evaluate_mot(gt_path, pred_path)
            result["tracking"] = {k: v for k, v in combined.to_dict().items() if k != "frames"}
        return result
