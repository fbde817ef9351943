"""ByteTrack: two-stage association of high- then low-score detections with Kalman-predicted
tracks (Zhang et al., 2022), written over arrays so a frame costs a few dozen numpy calls.

Per frame (:meth:`ByteTrack.update`, one method per stage):

1. (optional) scene cut → all tracks end; camera motion → track states are warped.
2. Every track is predicted one frame ahead.
3. Confirmed tracks (tracked or lost) are matched to high-score detections on ``1 - IoU``,
   accepting costs up to ``match_cost``.
   With embeddings, lost tracks are then re-identified by their looks near their prediction
   (``reid_thresh``) and recovered at their last detected box (``recover_iou``).
4. Still-unmatched tracked tracks, and tracks lost for at most ``low_lost_frames``, are
   matched to low-score detections on ``1 - IoU`` (up to ``low_match_cost``): occluded or
   blurred objects keep their identity through weak detections instead of spawning new
   tracks.
5. Unconfirmed tracks get a chance with the remaining high-score detections; those unmatched
   are dropped. A track is confirmed after ``min_hits`` consecutive matches.
6. Remaining high-score detections start tracks if they score ``new_track_margin`` of the
   way from the strong threshold to 1 (no higher than the detector's median score) and at
   least ``new_track_score``.
7. Tracks lost for more than ``lost_seconds`` (converted with the source's frame rate) end.

"High score" is not one fixed number: the strong threshold of each frame is a low quantile
(``high_quantile``) of the scores this stream's detector gave lately, between ``high_score``
and ``high_score_max`` (:mod:`.scores`), since detectors spread their scores differently.
Stage 1's cost is ``1 - IoU`` unless ``fuse_score`` multiplies in the score, and its IoU is
plain unless ``buffer_sigmas`` grows the boxes by the tracks' uncertainty.

When the detections carry ``data["embedding"]``, stages 3 and 5 also weigh how alike a track
and a detection look (:mod:`.appearance`); without embeddings none of that runs. The tracks
live in a :class:`~.table.TrackTable`; the parameters are :class:`~.config.ByteTrackConfig`;
lost tracks reported at their predicted box are :mod:`.coasting`'s, lifecycle events
:mod:`.events`'.
"""

from __future__ import annotations

import math

import numpy as np

from detstream.engines.boxes import box_area, intersection_matrix, iou_matrix, paired_iou
from detstream.engines.spec import Detections
from detstream.stream.track.appearance import Appearance
from detstream.stream.track.base import Tracker, TrackEvent
from detstream.stream.track.coasting import Coasting
from detstream.stream.track.config import ByteTrackConfig
from detstream.stream.track.events import EventLog
from detstream.stream.track.kalman import KalmanFilter
from detstream.stream.track.matching import assign, buffered_iou_matrix
from detstream.stream.track.motion import FrameMemo, small_view
from detstream.stream.track.scores import ScoreScale
from detstream.stream.track.table import COLUMNS, LOST, TRACKED, TrackTable, rows_where

#: Weight of a track's past in its smoothed fit (the IoU of predicted and matched boxes).
FIT_MOMENTUM = 0.7


class _Frame:
    """One frame's association in progress: its detections as arrays, the tracks' predicted
    boxes, what is still unmatched, and the matches so far."""

    __slots__ = ("boxes", "scores", "classes", "emb", "known", "predicted", "high", "low",
                 "strong", "pool", "stale", "matches", "newly_lost", "dropped")

    def __init__(self, detections: Detections, emb: np.ndarray | None,
                 known: np.ndarray | None, config: ByteTrackConfig, strong: float) -> None:
        self.boxes = detections.boxes.astype(np.float64, copy=False)
        self.scores = detections.scores.astype(np.float64, copy=False)
        self.classes = detections.class_ids
        self.emb = emb  # unit embeddings [N, D]; None: IoU alone (no embedding head)
        self.known = known  # which rows of emb hold a vector
        self.strong = strong  # this frame's strong-score threshold
        self.high = rows_where(self.scores >= strong)  # not matched yet
        self.low = rows_where((self.scores >= config.low_score)  # low-score detections
                              & (self.scores < strong))
        # (tracks, detections, strong): strong matches (high-score detections) teach looks
        self.matches: list[tuple[np.ndarray, np.ndarray, bool]] = []
        # Set by the stages (no placeholders: thousands of frames a second): the tracks'
        # predicted boxes; in stage 1 the mask of lost tracks too stale for motion and the
        # confirmed tracks not matched yet; the tracked tracks left unmatched in stage 2 and
        # the unconfirmed ones in stage 3.
        self.predicted: np.ndarray
        self.stale: np.ndarray
        self.pool: np.ndarray
        self.newly_lost: np.ndarray
        self.dropped: np.ndarray

    def looks(self, dets: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Embeddings of detections ``dets`` and which hold one (``(None, None)``: none)."""
        if self.emb is None:
            return None, None
        return self.emb[dets], self.known[dets]

    def match(self, tracks: np.ndarray, dets: np.ndarray, strong: bool) -> None:
        """Record pairs ``tracks[i]``-``dets[i]``."""
        self.matches.append((tracks, dets, strong))

    def found_lost(self, lost: np.ndarray, pairs: np.ndarray, rest_d: np.ndarray) -> None:
        """Record lost tracks ``lost`` matched to the high-score detections left (``pairs``
        of indices into both, ``rest_d`` the detections left unmatched)."""
        self.match(lost[pairs[:, 0]], self.high[pairs[:, 1]], strong=True)
        self.pool = np.setdiff1d(self.pool, lost[pairs[:, 0]])
        self.high = self.high[rest_d]


class ByteTrack(Tracker):
    """ByteTrack over arrays.

    Args:
        config: parameters.
        fps: the source's frame rate (scales ``lost_seconds`` to frames).
        motion: optional camera-motion estimator (``estimate(frame, boxes) -> 2x3 affine``).
        cuts: optional scene-cut detector (``is_cut(frame) -> bool``).
        first_id: the id of the first track (a resumed run starts above every id its
            outputs already hold); :meth:`reset` numbers from it again.
        frame_size: the frames' ``(width, height)`` when the tracker sees detections without
            their frames (a MOTChallenge ``det.txt``); otherwise each frame passed to
            :meth:`update` tells it. Unknown (None), coasted boxes are not kept inside it.

    Attributes:
        tracks: the :class:`~.table.TrackTable`; its columns (``mean``, ``feature``, ...) can
            also be read as the tracker's own attributes.
    """

    name = "bytetrack"

    def __init__(self, config: ByteTrackConfig | None = None, fps: float = 30.0,
                 motion=None, cuts=None, first_id: int = 1,
                 frame_size: tuple[int, int] | None = None) -> None:
        self.config = config or ByteTrackConfig()
        if first_id < 1:
            raise ValueError(f"first_id must be 1 or more, got {first_id}")
        self.first_id = first_id
        self._size_given = frame_size is not None
        self.frame_size = (int(frame_size[0]), int(frame_size[1])) if frame_size else None
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else 30.0
        self.max_lost = max(1, int(round(self.config.lost_seconds * self.fps)))
        self.max_lost_reid = max(self.max_lost, int(round(self.config.reid_seconds * self.fps)))
        cfg = self.config
        # Velocity noise is given per frame at 30 fps: at lower rates speed changes more
        # between frames (fps_noise_power).
        self.kf = KalmanFilter(cfg.state, cfg.std_position,
                               cfg.std_velocity * (30.0 / self.fps) ** cfg.fps_noise_power)
        self.strong = ScoreScale(cfg.high_quantile, cfg.high_score, cfg.high_score_max,
                                 cfg.score_memory, cfg.low_score)
        self.appearance = Appearance(self.config)
        self.coasting = Coasting(self.config, self.kf)
        self.motion = motion
        self.cuts = cuts
        self._seen = FrameMemo()
        self.reset()

    def reset(self) -> None:
        self.next_id = self.first_id  # a new stream numbers its tracks from the first again
        if not self._size_given:
            self.frame_size = None  # the next stream's frames tell it
        self.cut_count = 0
        self.frame = 0
        self.first_frame = 1  # tracks born on this frame are confirmed at once
        self.tracks = TrackTable()
        self.strong.reset()
        self.events: list[TrackEvent] = []
        self._log = EventLog()
        if self.motion is not None:
            self.motion.reset()
        if self.cuts is not None:
            self.cuts.reset()

    def __len__(self) -> int:
        return len(self.tracks)

    def __getattr__(self, name: str):
        # Only called for names not found otherwise: the table's columns, read through the
        # tracker as before the table was split out (``tracker.mean``, ``tracker.feature``).
        if name in COLUMNS:
            return getattr(self.tracks, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ per frame
    def update(self, detections: Detections, frame: np.ndarray | None = None) -> Detections:
        """Associate this frame's detections with the tracks, stage by stage (the module's
        docstring lists them); returns the confirmed tracks seen, then those coasting."""
        view, scale = self._next_frame(frame)
        f = _Frame(detections, *self.appearance.embeddings(detections, self.tracks),
                   self.config, self.strong.threshold(detections.scores))
        if view is not None and self.motion is not None:
            self._compensate(frame, view, scale, f.boxes)
        f.predicted = self._predict()
        self._match_high(f)
        self._reidentify(f)
        self._recover(f)
        self._match_low(f)
        self._match_unconfirmed(f)
        self._apply_matches(f)
        self._end_tracks(f)
        self._start_tracks(f)
        return self._output(detections)

    def carry(self, detections_like: Detections | None = None,
              frame: np.ndarray | None = None) -> Detections:
        """Advance one frame without detections (``--detect-every K``): camera motion and
        Kalman prediction only; returns the confirmed tracks at their predicted boxes. Tracks
        do not age towards being lost on carried frames."""
        view, scale = self._next_frame(frame)
        tracks = self.tracks
        if view is not None and self.motion is not None:
            self._compensate(frame, view, scale, self.kf.to_boxes(tracks.mean))
        if len(tracks):
            tracks.mean, tracks.cov = self.kf.predict(tracks.mean, tracks.cov)
            tracks.last_seen[tracks.status == TRACKED] = self.frame
        names = detections_like.class_names if detections_like is not None else ()
        return self._output(Detections.empty(names), predicted=True)

    # ------------------------------------------------------------------ stages
    def _next_frame(self, frame: np.ndarray | None) -> tuple[np.ndarray | None, float]:
        """Start a frame: its size, a scene cut (every track ends), the frame count; the small
        view of ``frame`` for camera motion (None if unused) and its scale."""
        if frame is not None and not self._size_given and frame.ndim >= 2:
            self.frame_size = (int(frame.shape[1]), int(frame.shape[0]))
        view, scale = self._view(frame)
        if view is not None and self.cuts is not None and self.cuts.is_cut(view):
            self._end_all()
        self.frame += 1
        return view, scale

    def _predict(self) -> np.ndarray:
        """Predict every track one frame ahead; their predicted boxes."""
        tracks = self.tracks
        if len(tracks):
            lost = tracks.status == LOST
            tracks.mean[lost, 6:] = 0.0  # a lost box stops changing shape and size
            tracks.mean, tracks.cov = self.kf.predict(tracks.mean, tracks.cov)
        return self.kf.to_boxes(tracks.mean)

    def _match_high(self, f: _Frame) -> None:
        """Stage 1: confirmed tracks (tracked or lost) with high-score detections."""
        tracks = self.tracks
        # Tracks lost for longer than lost_seconds (kept up to reid_seconds for their looks)
        # only take part in re-identification: motion says little about them any more. (The
        # tracks the previous frame kept were lost at most max_lost frames then, max_lost + 1
        # now.)
        f.stale = (tracks.status == LOST) & (self.frame - tracks.last_seen > self.max_lost + 1)
        pool = rows_where(tracks.confirmed & ~f.stale)
        iou = self._overlap(f.predicted, pool, f.boxes[f.high], looks=f.emb is not None)
        pairs, rest_t, rest_d = assign(self._high_cost(f, pool, iou), self.config.match_cost)
        f.match(pool[pairs[:, 0]], f.high[pairs[:, 1]], strong=True)
        f.pool, f.high = pool[rest_t], f.high[rest_d]

    def _reidentify(self, f: _Frame) -> None:
        """Stage 1b: lost tracks with remaining high-score detections of their class that look
        just like them, within reach."""
        # After a long occlusion an object is rarely where its motion pointed, and IoU alone
        # starts a new track.
        if f.emb is None or self.config.reid_thresh <= 0:
            return
        tracks = self.tracks
        lost = np.concatenate([f.pool[tracks.status[f.pool] == LOST], rows_where(f.stale)])
        if not len(lost) or not len(f.high):
            return
        emb, known = f.looks(f.high)
        cost = self.appearance.reid_cost(tracks, f.predicted, lost, f.boxes[f.high],
                                          f.classes[f.high], emb, known)
        pairs, _, rest_d = assign(cost, self.config.reid_thresh)
        f.found_lost(lost, pairs, rest_d)

    def _recover(self, f: _Frame) -> None:
        """Stage 1c: lost tracks still unmatched with remaining high-score detections over
        their last detected box that look like them (after OC-SORT)."""
        # An object that stopped behind an occluder comes out where it went in, while its
        # prediction has coasted on.
        if f.emb is None or self.config.recover_iou <= 0 or not len(f.high):
            return
        lost = f.pool[self.tracks.status[f.pool] == LOST]
        if not len(lost):
            return
        cost = self.appearance.recovery_cost(self.tracks, lost, f.boxes[f.high],
                                             *f.looks(f.high))
        pairs, _, rest_d = assign(cost, 1.0 - self.config.recover_iou)
        f.found_lost(lost, pairs, rest_d)

    def _match_low(self, f: _Frame) -> None:
        """Stage 2: tracks still tracked, or lost for at most ``low_lost_frames``, with
        low-score detections, on IoU."""
        cfg, tracks = self.config, self.tracks
        offered = tracks.status[f.pool] == TRACKED
        if cfg.low_lost_frames > 0:  # a lost track's last match was 2 or more frames ago
            offered |= self.frame - tracks.last_seen[f.pool] <= cfg.low_lost_frames + 1
        candidates = f.pool[offered]
        pairs, rest_t, _ = assign(1.0 - iou_matrix(f.predicted[candidates], f.boxes[f.low]),
                                  cfg.low_match_cost)
        f.match(candidates[pairs[:, 0]], f.low[pairs[:, 1]], strong=False)
        unmatched = candidates[rest_t]
        f.newly_lost = unmatched[tracks.status[unmatched] == TRACKED]

    def _match_unconfirmed(self, f: _Frame) -> None:
        """Stage 3: unconfirmed tracks with the remaining high-score detections."""
        unconfirmed = rows_where(~self.tracks.confirmed)
        iou = iou_matrix(f.predicted[unconfirmed], f.boxes[f.high])
        pairs, rest_t, rest_d = assign(self._high_cost(f, unconfirmed, iou),
                                       self.config.unconfirmed_cost)
        f.match(unconfirmed[pairs[:, 0]], f.high[pairs[:, 1]], strong=True)
        f.dropped = unconfirmed[rest_t]  # a candidate missed once is dropped
        f.high = f.high[rest_d]

    def _apply_matches(self, f: _Frame) -> None:
        """Correct the matched tracks with their detections; tracked ones unmatched are lost."""
        tracks = self.tracks
        t = np.concatenate([pair[0] for pair in f.matches])
        d = np.concatenate([pair[1] for pair in f.matches])
        if len(t):
            measured = self.kf.from_boxes(f.boxes[d])
            tracks.mean[t], tracks.cov[t] = self.kf.update(tracks.mean[t], tracks.cov[t],
                                                           measured)
            tracks.status[t] = TRACKED
            tracks.hits[t] += 1
            tracks.last_seen[t] = self.frame
            tracks.score[t] = f.scores[d]
            tracks.cls[t] = f.classes[d]
            tracks.det_box[t] = f.boxes[d]
            fit = paired_iou(f.predicted[t], f.boxes[d])
            tracks.fit[t] = np.where(np.isnan(tracks.fit[t]), fit,
                                     FIT_MOMENTUM * tracks.fit[t] + (1.0 - FIT_MOMENTUM) * fit)
            tracks.confirmed[t] |= tracks.hits[t] >= self.config.min_hits
            if f.emb is not None:
                self._learn(f)
        tracks.status[f.newly_lost] = LOST
        tracks.hits[f.newly_lost] = 0

    def _learn(self, f: _Frame) -> None:
        """Blend the embeddings of high-score matches into their tracks (weak detections are
        often occluded: their embeddings mix in what hides them)."""
        rows = np.concatenate([pair[0] for pair in f.matches if pair[2]])
        strong = np.concatenate([pair[1] for pair in f.matches if pair[2]])
        useful = f.known[strong]  # rows without an embedding teach nothing
        if useful.any():
            self.appearance.learn(self.tracks, rows[useful], f.emb[strong[useful]])

    def _end_tracks(self, f: _Frame) -> None:
        """End dropped unconfirmed tracks, tracks lost for too long, and duplicates."""
        tracks = self.tracks
        keep = np.ones(len(tracks), bool)
        keep[f.dropped] = False
        limit = np.where(tracks.has_feature, self.max_lost_reid, self.max_lost)
        keep &= ~((tracks.status == LOST) & (self.frame - tracks.last_seen > limit))
        keep &= ~self._duplicates()
        tracks.select(keep)

    def _start_tracks(self, f: _Frame) -> None:
        """Start tracks on the high-score detections left that score ``new_track_score``,
        unless they lie inside a tracked box."""
        cfg = self.config
        # A share of the way from the strong threshold to certainty, but never above the
        # detector's median score: one whose scores bunch up must still start tracks.
        least = f.strong + cfg.new_track_margin * (1.0 - f.strong)
        typical = self.strong.typical()  # None while warming up, or high_quantile 0
        if typical is not None:
            least = min(least, max(typical, f.strong))
        least = max(least, cfg.new_track_score)
        fresh = f.high[f.scores[f.high] >= least]
        if len(fresh) and self.config.max_inside < 1.0:
            fresh = fresh[~self._inside_tracks(f.boxes[fresh], *f.looks(fresh))]
        if len(fresh):
            self._start(f.boxes[fresh], f.scores[fresh], f.classes[fresh], *f.looks(fresh))

    def _output(self, detections: Detections, predicted: bool = False) -> Detections:
        """The confirmed tracks seen on this frame (at their predicted boxes when
        ``predicted``), then those coasting; records the frame's events."""
        tracks = self.tracks
        self.events = self._log.record(tracks)
        live = rows_where((tracks.status == TRACKED) & tracks.confirmed
                          & (tracks.last_seen == self.frame))
        if self.config.output == "detection" and not predicted:
            boxes = tracks.det_box[live]
        else:
            boxes = self.kf.to_boxes(tracks.mean[live])
        live, boxes, data = self.coasting.add(tracks, live, boxes, self.frame, self.fps,
                                              self.frame_size)
        return Detections(boxes=boxes.astype(np.float32), scores=tracks.score[live],
                          class_ids=tracks.cls[live], track_ids=tracks.ids[live],
                          class_names=detections.class_names, data=data)

    # ------------------------------------------------------------------ helpers
    def _view(self, frame: np.ndarray | None) -> tuple[np.ndarray | None, float]:
        """One small view of ``frame`` for scene cuts and camera motion (none if unused)."""
        if frame is None or (self.motion is None and self.cuts is None):
            return None, 1.0
        seen = self._seen.get(frame)
        if seen is not None:
            return seen["view"]
        view = small_view(frame)
        self._seen.put(frame, {"view": view})
        return view

    def _compensate(self, frame: np.ndarray, view: np.ndarray, scale: float,
                    boxes: np.ndarray) -> None:
        """Warp every track by the camera's motion, estimated on ``view`` (``scale`` times
        the frame) with ``boxes`` (frame pixels) masked out. A frame tracked again (a late
        detection replayed, :mod:`~detstream.stream.pipeline.late`) reuses its first
        estimate and the estimator's state after it."""
        # (An estimator without state()/restore() estimates every time.)
        seen = self._seen.get(frame) if hasattr(self.motion, "restore") else None
        if seen is not None and "affine" in seen:
            affine = seen["affine"]
            self.motion.restore(seen["motion"])
        else:
            affine = self.motion.estimate(view, boxes * scale)
            if seen is not None:
                seen.update(affine=affine, motion=self.motion.state())
        tracks = self.tracks
        if len(tracks) and affine is not None:
            affine = affine.copy()
            affine[:, 2] /= scale  # the view's translation in frame pixels
            tracks.mean, tracks.cov = self.kf.warp(tracks.mean, tracks.cov, affine)

    def _high_cost(self, f: _Frame, rows: np.ndarray, iou: np.ndarray) -> np.ndarray:
        """Cost of tracks ``rows`` with the high-score detections left, from their ``iou``:
        ``1 - IoU x score`` (``1 - IoU`` without ``fuse_score``), fused with their looks."""
        sim = iou * f.scores[f.high][None, :] if self.config.fuse_score else iou
        cost = 1.0 - sim
        if f.emb is not None:
            cost = self.appearance.fuse(self.tracks, cost, iou, rows, *f.looks(f.high))
        return cost

    def _overlap(self, predicted: np.ndarray, rows: np.ndarray, boxes: np.ndarray,
                 looks: bool = False) -> np.ndarray:
        """IoU of tracks ``rows`` with ``boxes``, buffered by the tracks' position
        uncertainty: ``buffer_sigmas`` for every track, ``looks_buffer_sigmas`` for tracks
        with an appearance vector when ``looks`` (the detections carry vectors too), whose
        looks then vouch for a match found farther off."""
        cfg, tracks = self.config, self.tracks
        k = np.full(len(rows), cfg.buffer_sigmas)
        if looks:
            k[tracks.has_feature[rows]] = cfg.looks_buffer_sigmas
        if not (k > 0).any():
            return iou_matrix(predicted[rows], boxes)
        sigma = np.sqrt(np.maximum(tracks.cov[rows][:, [0, 1], [0, 1]], 0.0))
        return buffered_iou_matrix(predicted[rows], boxes, k[:, None] * sigma)

    def _inside_tracks(self, boxes: np.ndarray, emb: np.ndarray | None = None,
                       known: np.ndarray | None = None) -> np.ndarray:
        """Which boxes lie mostly inside a box tracked in this frame (a part of an object the
        detector also found whole, or a second box on it): those start no track. With
        embeddings ``emb`` (``known`` where a row holds one), a box that looks unlike the
        track it lies in (distance above ``appearance_thresh``) is another object, half
        hidden behind that one, and does not count as inside it."""
        tracks = self.tracks
        seen = rows_where((tracks.status == TRACKED) & (tracks.last_seen == self.frame))
        if not len(seen):
            return np.zeros(len(boxes), bool)
        inter = intersection_matrix(boxes, self.kf.to_boxes(tracks.mean[seen]))
        inside = inter > self.config.max_inside * box_area(boxes)[:, None]
        if emb is not None and inside.any():
            inside &= ~self.appearance.unlike(tracks, seen, emb, known).T
        return inside.any(axis=1)

    def _duplicates(self) -> np.ndarray:
        """Tracks that duplicate another: a lost track and a tracked one over the same object
        (IoU above ``duplicate_iou``); the younger of each pair goes (as ByteTrack does)."""
        tracks = self.tracks
        out = np.zeros(len(tracks), bool)
        if self.config.duplicate_iou >= 1.0:  # off: no IoU exceeds 1
            return out
        tracked = rows_where(tracks.status == TRACKED)
        lost = rows_where(tracks.status == LOST)
        if not len(tracked) or not len(lost):
            return out
        boxes = self.kf.to_boxes(tracks.mean)
        iou = iou_matrix(boxes[tracked], boxes[lost])
        for i, j in zip(*np.nonzero(iou > self.config.duplicate_iou), strict=True):
            a, b = tracked[i], lost[j]
            younger = a if self.frame - tracks.born[a] < self.frame - tracks.born[b] else b
            out[younger] = True
        return out

    def _start(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
               emb: np.ndarray | None = None, known: np.ndarray | None = None) -> None:
        """Start a track on each of ``boxes``, numbered on from ``next_id``."""
        n = len(boxes)
        mean, cov = self.kf.initiate(self.kf.from_boxes(boxes))
        # Tracks of a stream's first frame (or after a cut) are confirmed at once.
        first = self.frame == self.first_frame or self.config.min_hits <= 1
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        self.tracks.start(ids, mean, cov, first, self.frame, boxes, scores, classes, emb, known)

    def _end_all(self) -> None:
        """A scene cut: every track ends, and tracks of the next frame are confirmed at once."""
        self.tracks.select(np.zeros(len(self.tracks), bool))
        self.first_frame = self.frame + 1
        self.cut_count += 1
        if self.motion is not None:
            self.motion.reset()


__all__ = ["FIT_MOMENTUM", "LOST", "TRACKED", "ByteTrack", "ByteTrackConfig", "TrackTable"]
