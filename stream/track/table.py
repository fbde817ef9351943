"""The track table: every track of one stream as a row of parallel numpy arrays.

The tracker works on whole columns at once (a frame costs a few dozen numpy calls, not a loop
over track objects); this class only holds the columns and keeps them the same length.
"""

from __future__ import annotations

import numpy as np

#: A track's ``status``: seen on its last frame, or lost (still looked for).
TRACKED, LOST = 1, 2

#: The per-track arrays, in the order they are listed below.
COLUMNS = ("ids", "mean", "cov", "status", "confirmed", "hits", "last_seen", "score", "cls",
           "det_box", "born", "fit", "feature", "has_feature")


def rows_where(mask: np.ndarray) -> np.ndarray:
    """Indices where a 1-D ``mask`` holds (``np.flatnonzero`` without its reshaping cost,
    which shows at a tracker's thousands of frames a second)."""
    return mask.nonzero()[0]


class TrackTable:
    """Tracks as rows of parallel arrays.

    Attributes:
        ids: int64 [T], the tracks' ids.
        mean, cov: float [T, 8] and [T, 8, 8], the Kalman states.
        status: int8 [T], :data:`TRACKED` or :data:`LOST`.
        confirmed: bool [T], reported (``min_hits`` matches, or born on a stream's first
            frame).
        hits: int64 [T], consecutive matches (0 once lost).
        last_seen: int64 [T], the frame of the last match.
        score, cls, det_box: the last matched detection's score, class id and box.
        born: int64 [T], the frame the track started on.
        fit: float [T], how well motion predicted the detections (IoU of predicted and
            matched boxes, smoothed; NaN before the first match).
        feature: float32 [T, D], smoothed unit embeddings (a zero row: none yet; D is 0
            until a detection brings an embedding).
        has_feature: bool [T], whether ``feature`` holds one.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """No tracks, and no embedding width."""
        self.ids = np.empty(0, np.int64)
        self.mean = np.empty((0, 8))
        self.cov = np.empty((0, 8, 8))
        self.status = np.empty(0, np.int8)
        self.confirmed = np.empty(0, bool)
        self.hits = np.empty(0, np.int64)
        self.last_seen = np.empty(0, np.int64)
        self.score = np.empty(0)
        self.cls = np.empty(0, np.int32)
        self.det_box = np.empty((0, 4))
        self.born = np.empty(0, np.int64)
        self.fit = np.empty(0)
        self.feature = np.zeros((0, 0), np.float32)
        self.has_feature = np.empty(0, bool)

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, keep: np.ndarray) -> None:
        """Keep only the rows where the bool mask ``keep`` holds."""
        if keep.all():  # most frames end no track
            return
        for name in COLUMNS:
            setattr(self, name, getattr(self, name)[keep])

    def start(self, ids: np.ndarray, mean: np.ndarray, cov: np.ndarray, confirmed: bool,
              frame: int, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
              emb: np.ndarray | None = None, known: np.ndarray | None = None) -> None:
        """Append tracks ``ids``, tracked from ``frame`` on, with Kalman states ``mean`` and
        ``cov`` from detections ``boxes``, ``scores``, ``classes`` and their unit embeddings
        ``emb`` (``known`` where a row holds one; none: no embedding yet)."""
        n = len(ids)
        self.ids = np.concatenate([self.ids, ids])
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.status = np.concatenate([self.status, np.full(n, TRACKED, np.int8)])
        self.confirmed = np.concatenate([self.confirmed, np.full(n, confirmed)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, frame)])
        self.score = np.concatenate([self.score, scores])
        self.cls = np.concatenate([self.cls, classes.astype(np.int32)])
        self.det_box = np.concatenate([self.det_box, boxes])
        self.born = np.concatenate([self.born, np.full(n, frame)])
        self.fit = np.concatenate([self.fit, np.full(n, np.nan)])
        if emb is None:
            emb, known = np.zeros((n, self.feature.shape[1]), np.float32), np.zeros(n, bool)
        self.feature = np.concatenate([self.feature, emb])
        self.has_feature = np.concatenate([self.has_feature, known])

    def forget_features(self, width: int) -> None:
        """Drop every track's embedding and take embeddings ``width`` wide from now on
        (vectors of another model cannot be compared with the old ones)."""
        self.feature = np.zeros((len(self), width), np.float32)
        self.has_feature = np.zeros(len(self), bool)
