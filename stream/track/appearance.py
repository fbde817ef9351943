"""Appearance: how alike tracks and detections look, and how that enters association.

When detections carry ``data["embedding"]`` (unit vectors from a model's embedding head),
each track keeps a smoothed unit embedding (:class:`~.table.TrackTable`'s ``feature``).
Looks then lower the cost of close, alike pairs (BoT-SORT, Aharon et al., 2022, here
summed with motion by default), re-identify lost tracks by looks alone near their
prediction, and recover lost tracks at their last detected box (after OC-SORT). The
distance used throughout is ``(1 - cosine similarity) / 2``: 0 alike, 1 opposite.
"""

from __future__ import annotations

import numpy as np

from detstream.engines.boxes import iou_matrix
from detstream.engines.spec import Detections
from detstream.stream.track.config import ByteTrackConfig
from detstream.stream.track.table import LOST, TrackTable


class Appearance:
    """The tracker's appearance rules, with its parameters ``config``."""

    def __init__(self, config: ByteTrackConfig) -> None:
        self.config = config

    def embeddings(self, detections: Detections, tracks: TrackTable
                   ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The detections' embeddings as unit float32 rows [N, D] and which rows hold one
        (zero, NaN or infinite rows are no evidence), or ``(None, None)`` when they have none
        or ``appearance`` is off. A new width D (another model) forgets the ``tracks``'
        embeddings: vectors of different models cannot be compared."""
        emb = detections.data.get("embedding") if self.config.appearance else None
        if emb is None:
            return None, None
        emb = np.asarray(emb, np.float32)
        if emb.ndim != 2 or emb.shape[1] == 0:
            raise ValueError(f"Detections.data['embedding']: expected float [N, D], got "
                             f"shape {list(emb.shape)}")
        norm = np.sqrt(np.einsum("ij,ij->i", emb, emb))[:, None]
        bad = ~np.isfinite(norm)
        if bad.any():  # NaN or inf (an overflowing engine): no evidence, as a zero row
            emb = np.where(bad, 0.0, emb).astype(np.float32)
            norm[bad] = 0.0
        emb = emb / np.maximum(norm, 1e-12)  # a zero row stays zero
        if emb.shape[1] != tracks.feature.shape[1]:
            tracks.forget_features(emb.shape[1])
        return emb, norm[:, 0] > 0

    @staticmethod
    def looks(tracks: TrackTable, rows: np.ndarray, emb: np.ndarray, known: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Appearance distance [T, M] of tracks ``rows`` to detections with unit embeddings
        ``emb`` [M, D], and where it is evidence (both hold a vector, ``known`` marking the
        detections')."""
        dist = (1.0 - tracks.feature[rows] @ emb.T) * 0.5
        return dist, tracks.has_feature[rows][:, None] & known[None, :]

    def fuse(self, tracks: TrackTable, cost: np.ndarray, iou: np.ndarray, rows: np.ndarray,
             emb: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Fuse the IoU ``cost`` of tracks ``rows`` with detections (embeddings ``emb``,
        ``known`` where they hold one) and their appearance distance: where the pair overlaps
        (``iou`` >= ``proximity_iou``) and looks alike (distance <= ``appearance_thresh``),
        the IoU cost less ``appearance_weight * (1 - distance / appearance_thresh)`` (or,
        with ``appearance_fusion`` ``min``, BoT-SORT's lower of cost and distance); the IoU
        cost elsewhere. Pairs of very different looks are refused when ``appearance_veto`` <
        1. A track or detection without an embedding is no evidence either way."""
        cfg = self.config
        if not cost.size or not tracks.has_feature[rows].any():
            return cost
        dist, evidence = self.looks(tracks, rows, emb, known)
        gate = np.where(tracks.status[rows] == LOST, cfg.lost_proximity_iou,
                        cfg.proximity_iou)
        alike = evidence & (dist <= cfg.appearance_thresh) & (iou >= gate[:, None])
        if cfg.appearance_fusion == "min":
            fused = np.where(alike, np.minimum(cost, dist), cost)
        else:  # a cost may fall below 0: the assignment takes any real costs
            bonus = cfg.appearance_weight * (1.0 - dist / max(cfg.appearance_thresh, 1e-9))
            fused = np.where(alike, cost - bonus, cost)
        if cfg.appearance_veto < 1.0:
            fused[evidence & (dist > cfg.appearance_veto)] = 2.0  # above every cost limit
        return fused

    def reid_cost(self, tracks: TrackTable, predicted: np.ndarray, rows: np.ndarray,
                  boxes: np.ndarray, classes: np.ndarray, emb: np.ndarray, known: np.ndarray
                  ) -> np.ndarray:
        """Appearance distance of lost tracks ``rows`` (every track's ``predicted`` box) to
        detections ``boxes``; 2 (above any limit) where either has no embedding, the classes
        differ, or the detection's centre lies farther from the track's predicted centre
        than ``reid_reach`` of its larger side."""
        dist, valid = self.looks(tracks, rows, emb, known)
        valid &= tracks.cls[rows][:, None] == classes[None, :]
        track = predicted[rows]
        centre_t = (track[:, :2] + track[:, 2:]) / 2.0
        centre_d = (boxes[:, :2] + boxes[:, 2:]) / 2.0
        side = np.maximum(track[:, 2] - track[:, 0], track[:, 3] - track[:, 1])
        reach = np.linalg.norm(centre_t[:, None] - centre_d[None], axis=2)
        valid &= reach <= self.config.reid_reach * side[:, None]
        return np.where(valid, dist, 2.0)

    def recovery_cost(self, tracks: TrackTable, rows: np.ndarray, boxes: np.ndarray,
                      emb: np.ndarray, known: np.ndarray) -> np.ndarray:
        """``1 - IoU`` of lost tracks ``rows``' last detected boxes with ``boxes``, where the
        pair looks alike (distance at most ``appearance_thresh``); 2 (above any limit)
        elsewhere."""
        cost = 1.0 - iou_matrix(tracks.det_box[rows], boxes)
        dist, alike = self.looks(tracks, rows, emb, known)
        alike &= dist <= self.config.appearance_thresh
        return np.where(alike, cost, 2.0)

    def unlike(self, tracks: TrackTable, rows: np.ndarray, emb: np.ndarray,
               known: np.ndarray) -> np.ndarray:
        """[T, M]: where tracks ``rows`` and detections surely look different (both hold a
        vector, at a distance above ``appearance_thresh``)."""
        dist, evidence = self.looks(tracks, rows, emb, known)
        return evidence & (dist > self.config.appearance_thresh)

    def learn(self, tracks: TrackTable, rows: np.ndarray, emb: np.ndarray) -> None:
        """Blend unit embeddings ``emb`` into tracks ``rows`` (exponential moving average,
        re-normalised); a track's first embedding is taken as it is."""
        m = self.config.feature_momentum
        old = tracks.has_feature[rows][:, None]
        blended = np.where(old, m * tracks.feature[rows] + (1.0 - m) * emb, emb)
        norm = np.sqrt(np.einsum("ij,ij->i", blended, blended))[:, None]
        tracks.feature[rows] = blended / np.maximum(norm, 1e-12)
        tracks.has_feature[rows] = True
