"""ByteTrack: two-stage association of high- then low-score detections with Kalman-predicted
tracks (Zhang et al., 2022), written over arrays so a frame costs a few dozen numpy calls.

Per frame:

1. (optional) scene cut → all tracks end; camera motion → track states are warped.
2. Every track is predicted one frame ahead.
3. Confirmed tracks (tracked or lost) are matched to high-score detections on
   ``1 - IoU * score`` (score fusion), accepting costs up to ``match_cost``.
   With embeddings, lost tracks are then re-identified by their looks near their prediction
   (``reid_thresh``) and recovered at their last detected box (``recover_iou``).
4. Still-unmatched tracked tracks, and tracks lost for at most ``low_lost_frames``, are
   matched to low-score detections on ``1 - IoU`` (up to ``low_match_cost``): occluded or
   blurred objects keep their identity through weak detections instead of spawning new
   tracks.
5. Unconfirmed tracks get a chance with the remaining high-score detections; those unmatched
   are dropped. A track is confirmed after ``min_hits`` consecutive matches.
6. Remaining detections above ``new_track_score`` start tracks.
7. Tracks lost for more than ``lost_seconds`` (converted with the source's frame rate) end.

Appearance (BoT-SORT, Aharon et al., 2022): when the detections carry
``data["embedding"]`` (unit appearance vectors from the model's embedding head), stages 3 and 5
also weigh how alike a track and a detection look. Each track keeps a smoothed embedding,
updated from its high-score matches; a pair that already overlaps (``proximity_iou``) and looks
alike (``appearance_thresh``) has its IoU cost lowered in proportion to how alike
(``appearance_weight``), so motion and looks both count. Without embeddings none of this
runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from detstream.engines.boxes import box_area, intersection_matrix, iou_matrix, paired_iou
from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections
from detstream.stream.track.base import Tracker, TrackEvent
from detstream.stream.track.kalman import KalmanFilter
from detstream.stream.track.matching import assign, buffered_iou_matrix
from detstream.stream.track.motion import small_view

TRACKED, LOST = 1, 2
#: Weight of a track's past in its smoothed fit (the IoU of predicted and matched boxes).
FIT_MOMENTUM = 0.7


def _rows(mask: np.ndarray) -> np.ndarray:
    """Indices where a 1-D ``mask`` holds (``np.flatnonzero`` without its reshaping cost,
    which shows at a tracker's thousands of frames a second)."""
    return mask.nonzero()[0]


@dataclass(frozen=True)
class ByteTrackConfig:
    """Tracker parameters (all documented in README's tracking section).

    Attributes:
        high_score: detections at or above are matched first and may start tracks.
        low_score: detections below are ignored; between the two they only extend tracks.
        new_track_score: a detection must score at least this to start a track.
        match_cost: first-stage cost limit (1 - IoU x score).
        low_match_cost: second-stage cost limit (1 - IoU).
        unconfirmed_cost: cost limit for tracks not yet confirmed.
        min_hits: consecutive matches that confirm a track (tracks of the first frame are
            confirmed at once).
        lost_seconds: how long a lost track waits to be found again.
        fuse_score: multiply IoU by the detection score in the first stage.
        state: Kalman parametrisation, ``xyah`` (ByteTrack) or ``xywh`` (BoT-SORT).
        std_position, std_velocity: Kalman noise as fractions of the box size.
        output: ``filtered`` (Kalman-corrected boxes) or ``detection`` (the matched boxes).
        duplicate_iou: a tracked and a lost track overlapping more than this are one object;
            the younger one ends (ByteTrack's rule, at 0.85). 1 (the default) switches it
            off: with coasting, recovery and re-identification, a lost track over a tracked
            one is far more often an object hidden behind it, which comes out again, than a
            copy (``bench tune`` on 33 sequences, BENCHMARKS.md).
        max_inside: a new detection lying more than this fraction inside a box tracked in the
            same frame starts no track (1.0 switches this off), unless, with embeddings, it
            looks unlike that track (distance above ``appearance_thresh``): then it is another
            object, mostly hidden behind the first.
        buffer_sigmas: first-stage matching grows both boxes of a track-detection pair by this
            many standard deviations of the track's predicted position (buffered IoU), so a
            track whose object sped up, turned or went unseen for a few frames is still found;
            0 uses plain IoU.
        appearance: use the detections' ``data["embedding"]`` when they carry one (a model
            with an embedding head); without embeddings the tracker is the same either way.
        appearance_thresh: appearance distance ``(1 - cosine similarity) / 2`` (0 alike, 1
            opposite) at or below which a pair's looks count; above it they are no evidence.
        appearance_fusion: how looks enter a close, alike pair's cost. ``sum`` (default): the
            IoU cost less ``appearance_weight * (1 - distance / appearance_thresh)``, so
            both motion and looks decide between two alike neighbours. ``min``: BoT-SORT's
            lower of the IoU cost and the distance, where looks alone decide between alike
            neighbours (every alike pair's cost falls to its small distance).
        appearance_weight: with ``sum``, the most a pair's looks lower its cost (identical
            vectors); nothing at ``appearance_thresh``.
        proximity_iou: looks only count for a pair whose IoU (the first stage's buffered IoU;
            plain IoU for unconfirmed tracks) is at least this: they decide between nearby
            candidates, never pull a track across the frame.
        lost_proximity_iou: the same gate for tracks that are lost: their buffered boxes have
            grown with their uncertainty, and an object found again after an occlusion is
            rarely where its motion said, so looks may be let count at a lower overlap.
        appearance_veto: a pair whose appearance distance exceeds this gets a cost above
            every limit however well it overlaps (1 switches the veto off).
        feature_momentum: each track's embedding is ``momentum * old + (1 - momentum) *
            new``, re-normalised, learnt from matches with high-score detections only (weak
            detections are often occluded: their embeddings mix in what hides them).
        coast_seconds: report a lost track at its predicted box (``data["coasted"]`` True)
            for up to this long, as long as ``coast_cover`` of that box lies inside boxes
            tracked in this frame: a missed detection or a short occlusion leaves no hole
            in the track. 0 reports only what was detected.
        coast_cover: the share of a lost track's predicted box that boxes tracked in this
            frame must cover for it to be reported (0: any lost track; 1: only one wholly
            hidden behind another, as a person walking behind another).
        coast_fit: only tracks whose motion has been predicting their detections well
            coast: their smoothed IoU between predicted and matched boxes is at least this
            (0: any). Where detections are loose or motion is erratic a guess is worth less
            than no box.
        coast_inside: only a lost track whose predicted box lies at least this share inside
            the frame coasts: an object that vanishes at the frame's edge has most likely left
            it, and its guessed box would walk on out of the picture. Needs the frame size
            (taken from the frames, or given as ``frame_size``); without it, or at 0, the
            rule is off.
        low_lost_frames: tracks lost for at most this many frames also take part in the
            second stage (low-score detections, on IoU): an object missed once and then found
            only weakly, as it comes out from behind another, is taken up again while its
            predicted box still fits, instead of waiting for a strong detection and drifting.
            Counted in frames, not seconds: a detector's misses flicker frame by frame. 0 is
            ByteTrack's rule (tracked tracks only).
        recover_iou: lost tracks still unmatched after the first stage are matched to the
            remaining high-score detections that overlap their *last detected* box by at least
            this IoU and look alike (appearance distance at most ``appearance_thresh``), as
            OC-SORT recovers tracks from their last observation: an object that stopped or
            turned behind an occluder comes out where it went in, while its prediction has
            gone on. Needs embeddings on both sides; 0 switches it off.
        reid_thresh: lost tracks are also matched, after the first stage, to remaining
            high-score detections of their class by appearance alone, at distances up to
            this (0: off), wherever within ``reid_reach``. 0.05 (cosine 0.9) and a reach of
            5 sides were the best of 16 settings on ``bench mot``'s 16 scenes, also when
            chosen with each scene left out (BENCHMARKS.md, "Re-identifying lost tracks").
        reid_reach: how far (in the lost track's larger box side, from its predicted centre)
            a detection may be to be re-identified as it.
        reid_seconds: a lost track that has an embedding waits this long (when above
            ``lost_seconds``) to be re-identified; past ``lost_seconds`` it takes part only
            in re-identification, not in the motion-based first stage.

    A pair's cost is its IoU cost less its looks' share where it is close and alike, its IoU
    cost elsewhere, against ``match_cost`` / ``unconfirmed_cost`` as before: a track keeps the
    object it looks like when motion points at a neighbour, and a track without an embedding
    yet is matched on IoU alone. The sum replaced BoT-SORT's ``min(IoU cost, distance)`` with
    ``proximity_iou`` 0.3 and ``lost_seconds`` 2.5 (``bench tune`` on 33 sequences,
    BENCHMARKS.md "Looks and motion summed"): under the minimum, every alike pair's cost
    was its small appearance distance, so between two alike neighbours vector noise decided
    and motion was ignored. The values were chosen on
    synthetic embeddings of three qualities (BENCHMARKS.md, "Appearance"): threshold 0.1
    (cosine 0.8) gains about as much as BoT-SORT's 0.25 with good and moderate vectors; where
    vectors are poor it stays near IoU alone (HOTA 0.577 against 0.579) while 0.25 falls
    below it (0.573, 86 more identity switches); under the minimum, proximity 0.5 as BoT-SORT
    (0.3 helped good vectors and added identity switches with the others; with the sum, the
    model's vectors favour 0.3). The veto (0.25), the lost tracks'
    gate (0.1) and ``high_score`` (0.4) were then chosen with the trained default model's own
    vectors (``bench tune`` on 33 sequences, BENCHMARKS.md "Appearance with the default
    model"): the veto broke tracks with poor synthetic vectors (MOTA 0.744 → 0.729), but the
    model's are better than those.
    """

    high_score: float = 0.4
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_cost: float = 0.8
    low_match_cost: float = 0.5
    unconfirmed_cost: float = 0.7
    min_hits: int = 2
    lost_seconds: float = 2.5  # chosen by `bench tune` on 33 sequences (BENCHMARKS.md)
    fuse_score: bool = True
    state: str = "xyah"
    std_position: float = 1.0 / 20
    std_velocity: float = 1.0 / 160
    output: str = "filtered"
    duplicate_iou: float = 1.0  # off: chosen by bench tune on 33 sequences (BENCHMARKS.md)
    max_inside: float = 0.8
    buffer_sigmas: float = 2.0  # likewise
    appearance: bool = True
    appearance_thresh: float = 0.1
    appearance_fusion: str = "sum"
    appearance_weight: float = 1.0
    proximity_iou: float = 0.3  # with the sum: bench tune on 33 sequences (BENCHMARKS.md)
    lost_proximity_iou: float = 0.1
    appearance_veto: float = 0.25
    feature_momentum: float = 0.9
    coast_seconds: float = 0.2  # chosen on 33 sequences (BENCHMARKS.md, "Coasting ...")
    coast_cover: float = 0.0
    coast_fit: float = 0.65
    coast_inside: float = 0.7  # with coast_seconds 0.2: bench tune, 33 sequences (BENCHMARKS.md)
    reid_thresh: float = 0.05  # chosen on bench mot's 16 scenes (BENCHMARKS.md)
    reid_reach: float = 5.0
    reid_seconds: float = 4.0  # chosen by bench tune on 33 sequences (BENCHMARKS.md)
    low_lost_frames: int = 1  # chosen by bench tune on 33 sequences (BENCHMARKS.md)
    recover_iou: float = 0.3  # chosen by bench tune on 33 sequences (BENCHMARKS.md)

    def __post_init__(self) -> None:
        """Refuse values the tracker cannot work with (each names the parameter)."""
        ranges = {"high_score": (0, 1), "low_score": (0, 1), "new_track_score": (0, 1),
                  "match_cost": (0, 1), "low_match_cost": (0, 1), "unconfirmed_cost": (0, 1),
                  "duplicate_iou": (0, 1), "max_inside": (0, 1), "lost_seconds": (0, 3600),
                  "std_position": (0, 10), "std_velocity": (0, 10), "buffer_sigmas": (0, 10),
                  "min_hits": (1, 1000), "appearance_thresh": (0, 1), "proximity_iou": (0, 1),
                  "lost_proximity_iou": (0, 1), "appearance_weight": (0, 10),
                  "appearance_veto": (0, 1), "feature_momentum": (0, 1),
                  "coast_seconds": (0, 60), "coast_cover": (0, 1), "coast_fit": (0, 1),
                  "coast_inside": (0, 1),
                  "reid_thresh": (0, 1),
                  "reid_reach": (0, 100), "reid_seconds": (0, 3600),
                  "low_lost_frames": (0, 1000), "recover_iou": (0, 1)}
        for key, (low, high) in ranges.items():
            value = getattr(self, key)
            if not low <= value <= high:  # NaN fails too
                raise UserInputError(f"tracker parameter {key} must be from {low} to {high}, "
                                     f"got {value!r}")
        if self.low_score > self.high_score:
            raise UserInputError(f"tracker parameter low_score ({self.low_score}) must not "
                                 f"exceed high_score ({self.high_score})")
        for key, allowed in (("state", ("xyah", "xywh")), ("output", ("filtered", "detection")),
                             ("appearance_fusion", ("sum", "min"))):
            if getattr(self, key) not in allowed:
                raise UserInputError(f"tracker parameter {key} must be {' or '.join(allowed)}, "
                                     f"got {getattr(self, key)!r}")

    def to_dict(self) -> dict:
        return asdict(self)


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
        self.kf = KalmanFilter(self.config.state, self.config.std_position,
                               self.config.std_velocity)
        self.motion = motion
        self.cuts = cuts
        self.reset()

    def reset(self) -> None:
        self.next_id = self.first_id  # a new stream numbers its tracks from the first again
        if not self._size_given:
            self.frame_size = None  # the next stream's frames tell it
        self.cut_count = 0
        self.frame = 0
        self.first_frame = 1  # tracks born on this frame are confirmed at once
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
        self.fit = np.empty(0)  # how well motion predicted the detections (IoU, smoothed)
        self.feature = np.zeros((0, 0), np.float32)  # smoothed unit embeddings (rows)
        self.has_feature = np.empty(0, bool)  # False: no embedding seen yet (zero row)
        self.events: list[TrackEvent] = []
        self._known: dict[int, tuple[int, int]] = {}  # confirmed id -> (status, class)
        if self.motion is not None:
            self.motion.reset()
        if self.cuts is not None:
            self.cuts.reset()

    def __len__(self) -> int:
        return len(self.ids)

    # ------------------------------------------------------------------ per frame
    def update(self, detections: Detections, frame: np.ndarray | None = None) -> Detections:
        cfg = self.config
        self._measure(frame)
        view, scale = self._view(frame)
        if view is not None and self.cuts is not None and self.cuts.is_cut(view):
            self._end_all()
        self.frame += 1
        boxes = detections.boxes.astype(np.float64, copy=False)
        scores = detections.scores.astype(np.float64, copy=False)
        classes = detections.class_ids
        emb, known = self._embeddings(detections)  # None: IoU alone (no embedding head)
        if view is not None and self.motion is not None:
            self._compensate(view, scale, boxes)
        if len(self):
            lost = self.status == LOST
            self.mean[lost, 6:] = 0.0  # a lost box stops changing shape and size
            self.mean, self.cov = self.kf.predict(self.mean, self.cov)
        predicted = self.kf.to_boxes(self.mean)

        high = _rows(scores >= cfg.high_score)
        low = _rows((scores >= cfg.low_score) & (scores < cfg.high_score))
        matched_t: list[np.ndarray] = []
        matched_d: list[np.ndarray] = []

        # Stage 1: confirmed tracks (tracked or lost) with high-score detections. Tracks lost
        # for longer than lost_seconds (kept up to reid_seconds for their looks) only take
        # part in re-identification: motion says little about them any more. (The tracks
        # the previous frame kept were lost at most max_lost frames then, max_lost + 1 now.)
        stale = (self.status == LOST) & (self.frame - self.last_seen > self.max_lost + 1)
        pool = _rows(self.confirmed & ~stale)
        iou = self._overlap(predicted, pool, boxes[high])
        sim = iou * scores[high][None, :] if cfg.fuse_score else iou
        cost = 1.0 - sim
        if emb is not None:
            cost = self._fuse(cost, iou, pool, emb[high], known[high])
        pairs, rest_t, rest_d = assign(cost, cfg.match_cost)
        first_t, first_d = pool[pairs[:, 0]], high[pairs[:, 1]]
        pool, high = pool[rest_t], high[rest_d]

        # Stage 1b (re-identification): lost tracks with the remaining high-score detections
        # of their class that look just like them, within reach: after a long occlusion an
        # object is rarely where its motion pointed, and IoU alone starts a new track.
        if emb is not None and cfg.reid_thresh > 0:
            lost_rows = np.concatenate([pool[self.status[pool] == LOST], _rows(stale)])
            if len(lost_rows) and len(high):
                cost = self._reid_cost(predicted, lost_rows, boxes[high], classes[high],
                                       emb[high], known[high])
                pairs, _, rest_d = assign(cost, cfg.reid_thresh)
                first_t = np.concatenate([first_t, lost_rows[pairs[:, 0]]])
                first_d = np.concatenate([first_d, high[pairs[:, 1]]])
                pool = np.setdiff1d(pool, lost_rows[pairs[:, 0]])
                high = high[rest_d]
        # Stage 1c (recovery at the last sighting, after OC-SORT): lost tracks still unmatched
        # with remaining high-score detections over their last detected box that look like
        # them. An object that stopped behind an occluder comes out where it went in, while
        # its prediction has coasted on.
        if emb is not None and cfg.recover_iou > 0 and len(high):
            lost_rows = pool[self.status[pool] == LOST]
            if len(lost_rows):
                cost = 1.0 - iou_matrix(self.det_box[lost_rows], boxes[high])
                dist, alike = self._looks(lost_rows, emb[high], known[high])
                alike &= dist <= cfg.appearance_thresh
                pairs, _, rest_d = assign(np.where(alike, cost, 2.0), 1.0 - cfg.recover_iou)
                first_t = np.concatenate([first_t, lost_rows[pairs[:, 0]]])
                first_d = np.concatenate([first_d, high[pairs[:, 1]]])
                pool = np.setdiff1d(pool, lost_rows[pairs[:, 0]])
                high = high[rest_d]
        matched_t.append(first_t)
        matched_d.append(first_d)

        # Stage 2: tracks still tracked, or lost for at most low_lost_frames, with low-score
        # detections.
        offered = self.status[pool] == TRACKED
        if cfg.low_lost_frames > 0:  # a lost track's last match was 2 or more frames ago
            offered |= self.frame - self.last_seen[pool] <= cfg.low_lost_frames + 1
        tracked = pool[offered]
        pairs, rest_t, _ = assign(1.0 - iou_matrix(predicted[tracked], boxes[low]),
                                  cfg.low_match_cost)
        matched_t.append(tracked[pairs[:, 0]])
        matched_d.append(low[pairs[:, 1]])
        newly_lost = tracked[rest_t]
        newly_lost = newly_lost[self.status[newly_lost] == TRACKED]

        # Stage 3: unconfirmed tracks with the remaining high-score detections.
        unconfirmed = _rows(~self.confirmed)
        iou = iou_matrix(predicted[unconfirmed], boxes[high])
        sim = iou * scores[high][None, :] if cfg.fuse_score else iou
        cost = 1.0 - sim
        if emb is not None:
            cost = self._fuse(cost, iou, unconfirmed, emb[high], known[high])
        pairs, rest_t, rest_d = assign(cost, cfg.unconfirmed_cost)
        matched_t.append(unconfirmed[pairs[:, 0]])
        matched_d.append(high[pairs[:, 1]])
        dropped = unconfirmed[rest_t]
        high = high[rest_d]

        t = np.concatenate(matched_t)
        d = np.concatenate(matched_d)
        if len(t):
            measured = self.kf.from_boxes(boxes[d])
            self.mean[t], self.cov[t] = self.kf.update(self.mean[t], self.cov[t], measured)
            self.status[t] = TRACKED
            self.hits[t] += 1
            self.last_seen[t] = self.frame
            self.score[t] = scores[d]
            self.cls[t] = classes[d]
            self.det_box[t] = boxes[d]
            fit = paired_iou(predicted[t], boxes[d])
            self.fit[t] = np.where(np.isnan(self.fit[t]), fit,
                                   FIT_MOMENTUM * self.fit[t] + (1.0 - FIT_MOMENTUM) * fit)
            self.confirmed[t] |= self.hits[t] >= cfg.min_hits
            if emb is not None:  # stages 1 and 3 matched high-score detections
                rows = np.concatenate([matched_t[0], matched_t[2]])
                strong = np.concatenate([matched_d[0], matched_d[2]])
                useful = known[strong]  # rows without an embedding teach nothing
                if useful.any():
                    self._learn(rows[useful], emb[strong[useful]])
        self.status[newly_lost] = LOST
        self.hits[newly_lost] = 0

        # End dropped unconfirmed tracks and tracks lost for too long; start new ones.
        keep = np.ones(len(self), bool)
        keep[dropped] = False
        limit = np.where(self.has_feature, self.max_lost_reid, self.max_lost)
        keep &= ~((self.status == LOST) & (self.frame - self.last_seen > limit))
        keep &= ~self._duplicates()
        self._select(keep)
        fresh = high[scores[high] >= cfg.new_track_score]
        if len(fresh) and cfg.max_inside < 1.0:
            inside = self._inside_tracks(boxes[fresh], None if emb is None else emb[fresh],
                                         None if emb is None else known[fresh])
            fresh = fresh[~inside]
        if len(fresh):
            self._start(boxes[fresh], scores[fresh], classes[fresh],
                        None if emb is None else emb[fresh],
                        None if emb is None else known[fresh])
        return self._output(detections)

    def carry(self, detections_like: Detections | None = None,
              frame: np.ndarray | None = None) -> Detections:
        """Advance one frame without detections (``--detect-every K``): camera motion and
        Kalman prediction only; returns the confirmed tracks at their predicted boxes. Tracks
        do not age towards being lost on carried frames."""
        self._measure(frame)
        view, scale = self._view(frame)
        if view is not None and self.cuts is not None and self.cuts.is_cut(view):
            self._end_all()
        self.frame += 1
        if view is not None and self.motion is not None:
            self._compensate(view, scale, self.kf.to_boxes(self.mean))
        if len(self):
            self.mean, self.cov = self.kf.predict(self.mean, self.cov)
            self.last_seen[self.status == TRACKED] = self.frame
        names = detections_like.class_names if detections_like is not None else ()
        return self._output(Detections.empty(names), predicted=True)

    # ------------------------------------------------------------------ helpers
    def _measure(self, frame: np.ndarray | None) -> None:
        """Take the frame size from ``frame`` (unless the caller gave one)."""
        if frame is not None and not self._size_given and frame.ndim >= 2:
            self.frame_size = (int(frame.shape[1]), int(frame.shape[0]))

    def _view(self, frame: np.ndarray | None) -> tuple[np.ndarray | None, float]:
        """One small view of ``frame`` for scene cuts and camera motion (none if unused)."""
        if frame is None or (self.motion is None and self.cuts is None):
            return None, 1.0
        return small_view(frame)

    def _compensate(self, view: np.ndarray, scale: float, boxes: np.ndarray) -> None:
        """Warp every track by the camera's motion, estimated on ``view`` (``scale`` times
        the frame) with ``boxes`` (frame pixels) masked out."""
        affine = self.motion.estimate(view, boxes * scale)
        if len(self) and affine is not None:
            affine = affine.copy()
            affine[:, 2] /= scale  # the view's translation in frame pixels
            self.mean, self.cov = self.kf.warp(self.mean, self.cov, affine)

    def _overlap(self, predicted: np.ndarray, rows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """IoU of tracks ``rows`` with ``boxes``, buffered by the tracks' position
        uncertainty when ``buffer_sigmas`` > 0."""
        k = self.config.buffer_sigmas
        if k <= 0:
            return iou_matrix(predicted[rows], boxes)
        sigma = np.sqrt(np.maximum(self.cov[rows][:, [0, 1], [0, 1]], 0.0))
        return buffered_iou_matrix(predicted[rows], boxes, k * sigma)

    def _embeddings(self, detections: Detections) -> tuple[np.ndarray | None,
                                                           np.ndarray | None]:
        """The detections' embeddings as unit float32 rows [N, D] and which rows hold one
        (zero, NaN or infinite rows are no evidence), or ``(None, None)`` when they have none
        or ``appearance`` is off. A new width D (another model) forgets the tracks'
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
        if emb.shape[1] != self.feature.shape[1]:
            self.feature = np.zeros((len(self), emb.shape[1]), np.float32)
            self.has_feature = np.zeros(len(self), bool)
        return emb, norm[:, 0] > 0

    def _looks(self, rows: np.ndarray, emb: np.ndarray, known: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Appearance distance ``(1 - cosine) / 2`` of tracks ``rows`` to detections with
        unit embeddings ``emb`` [M, D], [T, M], and where it is evidence (both hold a vector,
        ``known`` marking the detections')."""
        dist = (1.0 - self.feature[rows] @ emb.T) * 0.5
        return dist, self.has_feature[rows][:, None] & known[None, :]

    def _fuse(self, cost: np.ndarray, iou: np.ndarray, rows: np.ndarray, emb: np.ndarray,
              known: np.ndarray) -> np.ndarray:
        """Fuse the IoU ``cost`` of tracks ``rows`` with detections (embeddings ``emb``,
        ``known`` where they hold one) and their appearance distance: where the pair overlaps
        (``iou`` >= ``proximity_iou``) and looks alike (distance <= ``appearance_thresh``),
        the IoU cost less ``appearance_weight * (1 - distance / appearance_thresh)`` (or,
        with ``appearance_fusion`` ``min``, BoT-SORT's lower of cost and distance); the IoU
        cost elsewhere. Pairs of very different looks are refused when ``appearance_veto`` <
        1. A track or detection without an embedding is no evidence either way."""
        cfg = self.config
        if not cost.size or not self.has_feature[rows].any():
            return cost
        dist, evidence = self._looks(rows, emb, known)
        gate = np.where(self.status[rows] == LOST, cfg.lost_proximity_iou, cfg.proximity_iou)
        alike = evidence & (dist <= cfg.appearance_thresh) & (iou >= gate[:, None])
        if cfg.appearance_fusion == "min":
            fused = np.where(alike, np.minimum(cost, dist), cost)
        else:  # a cost may fall below 0: the assignment takes any real costs
            bonus = cfg.appearance_weight * (1.0 - dist / max(cfg.appearance_thresh, 1e-9))
            fused = np.where(alike, cost - bonus, cost)
        if cfg.appearance_veto < 1.0:
            fused[evidence & (dist > cfg.appearance_veto)] = 2.0  # above every cost limit
        return fused

    def _reid_cost(self, predicted: np.ndarray, rows: np.ndarray, boxes: np.ndarray,
                   classes: np.ndarray, emb: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Appearance distance of lost tracks ``rows`` to detections ``boxes``; 2 (above any
        limit) where either has no embedding, the classes differ, or the detection's centre
        lies farther from the track's predicted centre than ``reid_reach`` of its larger
        side."""
        dist, valid = self._looks(rows, emb, known)
        valid &= self.cls[rows][:, None] == classes[None, :]
        track = predicted[rows]
        centre_t = (track[:, :2] + track[:, 2:]) / 2.0
        centre_d = (boxes[:, :2] + boxes[:, 2:]) / 2.0
        side = np.maximum(track[:, 2] - track[:, 0], track[:, 3] - track[:, 1])
        reach = np.linalg.norm(centre_t[:, None] - centre_d[None], axis=2)
        valid &= reach <= self.config.reid_reach * side[:, None]
        return np.where(valid, dist, 2.0)

    def _learn(self, rows: np.ndarray, emb: np.ndarray) -> None:
        """Blend unit embeddings ``emb`` into tracks ``rows`` (exponential moving average,
        re-normalised); a track's first embedding is taken as it is."""
        m = self.config.feature_momentum
        old = self.has_feature[rows][:, None]
        blended = np.where(old, m * self.feature[rows] + (1.0 - m) * emb, emb)
        norm = np.sqrt(np.einsum("ij,ij->i", blended, blended))[:, None]
        self.feature[rows] = blended / np.maximum(norm, 1e-12)
        self.has_feature[rows] = True

    def _inside_tracks(self, boxes: np.ndarray, emb: np.ndarray | None = None,
                       known: np.ndarray | None = None) -> np.ndarray:
        """Which boxes lie mostly inside a box tracked in this frame (a part of an object the
        detector also found whole, or a second box on it): those start no track. With
        embeddings ``emb`` (``known`` where a row holds one), a box that looks unlike the
        track it lies in (distance above ``appearance_thresh``) is another object, half
        hidden behind that one, and does not count as inside it."""
        seen = _rows((self.status == TRACKED) & (self.last_seen == self.frame))
        if not len(seen):
            return np.zeros(len(boxes), bool)
        inter = intersection_matrix(boxes, self.kf.to_boxes(self.mean[seen]))
        inside = inter > self.config.max_inside * box_area(boxes)[:, None]
        if emb is not None and inside.any():
            dist, evidence = self._looks(seen, emb, known)
            inside &= ~(evidence & (dist > self.config.appearance_thresh)).T
        return inside.any(axis=1)

    def _duplicates(self) -> np.ndarray:
        """Tracks that duplicate another: a lost track and a tracked one over the same object
        (IoU above ``duplicate_iou``); the younger of each pair goes (as ByteTrack does)."""
        out = np.zeros(len(self), bool)
        if self.config.duplicate_iou >= 1.0:  # off: no IoU exceeds 1
            return out
        tracked = _rows(self.status == TRACKED)
        lost = _rows(self.status == LOST)
        if not len(tracked) or not len(lost):
            return out
        boxes = self.kf.to_boxes(self.mean)
        iou = iou_matrix(boxes[tracked], boxes[lost])
        for i, j in zip(*np.nonzero(iou > self.config.duplicate_iou), strict=True):
            a, b = tracked[i], lost[j]
            younger = a if self.frame - self.born[a] < self.frame - self.born[b] else b
            out[younger] = True
        return out

    def _select(self, keep: np.ndarray) -> None:
        if keep.all():  # most frames end no track
            return
        for name in ("ids", "mean", "cov", "status", "confirmed", "hits", "last_seen", "score",
                     "cls", "det_box", "born", "fit", "feature", "has_feature"):
            setattr(self, name, getattr(self, name)[keep])

    def _start(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
               emb: np.ndarray | None = None, known: np.ndarray | None = None) -> None:
        n = len(boxes)
        mean, cov = self.kf.initiate(self.kf.from_boxes(boxes))
        first = self.frame == self.first_frame or self.config.min_hits <= 1
        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + n)])
        self.next_id += n
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.status = np.concatenate([self.status, np.full(n, TRACKED, np.int8)])
        self.confirmed = np.concatenate([self.confirmed, np.full(n, first)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, self.frame)])
        self.score = np.concatenate([self.score, scores])
        self.cls = np.concatenate([self.cls, classes.astype(np.int32)])
        self.det_box = np.concatenate([self.det_box, boxes])
        self.born = np.concatenate([self.born, np.full(n, self.frame)])
        self.fit = np.concatenate([self.fit, np.full(n, np.nan)])
        if emb is None:
            emb, known = np.zeros((n, self.feature.shape[1]), np.float32), np.zeros(n, bool)
        self.feature = np.concatenate([self.feature, emb])
        self.has_feature = np.concatenate([self.has_feature, known])

    def _end_all(self) -> None:
        self._select(np.zeros(len(self), bool))
        self.first_frame = self.frame + 1
        self.cut_count += 1
        if self.motion is not None:
            self.motion.reset()

    def _record_events(self) -> None:
        """This frame's lifecycle events, from the confirmed tracks' states before and now."""
        now = {i: (s, c) for i, s, c, ok
               in zip(self.ids.tolist(), self.status.tolist(), self.cls.tolist(),
                      self.confirmed.tolist(), strict=True) if ok}
        events = []
        for track_id, (status, cls) in now.items():
            before = self._known.get(track_id)
            if before is None:
                events.append(TrackEvent("started", track_id, cls))
                if status == LOST:
                    events.append(TrackEvent("lost", track_id, cls))
            elif before[0] != status:
                events.append(TrackEvent("lost" if status == LOST else "recovered", track_id,
                                         cls))
        events += [TrackEvent("ended", track_id, cls)
                   for track_id, (_, cls) in self._known.items() if track_id not in now]
        self._known = now
        self.events = events

    def _coasting(self, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lost confirmed tracks, lost for at most ``coast_seconds``, whose predicted box lies
        ``coast_inside`` in the frame and is covered at least ``coast_cover`` by the boxes
        ``seen`` this frame: objects the detector missed or that hide behind another,
        reported where their motion puts them. Returns their rows and predicted boxes."""
        cfg = self.config
        limit = cfg.coast_seconds * self.fps
        rows = _rows((self.status == LOST) & self.confirmed
                     & (self.frame - self.last_seen <= limit) & (self.fit >= cfg.coast_fit))
        if not len(rows):  # most frames
            return rows, np.empty((0, 4))
        boxes = self.kf.to_boxes(self.mean[rows])
        if cfg.coast_inside > 0 and self.frame_size is not None:
            width, height = self.frame_size
            clipped = np.clip(boxes, 0.0, [width, height, width, height])
            keep = box_area(clipped) >= cfg.coast_inside * box_area(boxes)
            rows, boxes = rows[keep], boxes[keep]
        if not len(rows) or cfg.coast_cover <= 0:
            return rows, boxes
        if not len(seen):
            return rows[:0], boxes[:0]
        inter = intersection_matrix(boxes, seen)
        keep = inter.max(axis=1) >= cfg.coast_cover * box_area(boxes)
        return rows[keep], boxes[keep]

    def _output(self, detections: Detections, predicted: bool = False) -> Detections:
        self._record_events()
        live = _rows((self.status == TRACKED) & self.confirmed
                     & (self.last_seen == self.frame))
        if self.config.output == "detection" and not predicted:
            boxes = self.det_box[live]
        else:
            boxes = self.kf.to_boxes(self.mean[live])
        data = {}
        if self.config.coast_seconds > 0:
            coasted, guesses = self._coasting(boxes)
            data["coasted"] = np.repeat([False, True], [len(live), len(coasted)])
            live = np.concatenate([live, coasted])
            boxes = np.concatenate([boxes, guesses])
        return Detections(boxes=boxes.astype(np.float32), scores=self.score[live],
                          class_ids=self.cls[live], track_ids=self.ids[live],
                          class_names=detections.class_names, data=data)
