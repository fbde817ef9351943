"""The tracker's parameters: :class:`ByteTrackConfig`, range-checked on creation.

Where each default came from (the ``bench tune`` and ``bench mot`` runs that chose it) is in
BENCHMARKS.md, "Tracker defaults: where each came from".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from detstream.engines.errors import UserInputError

#: Allowed range (inclusive) of each numeric parameter.
RANGES: dict[str, tuple[float, float]] = {
    "high_score": (0, 1), "low_score": (0, 1), "new_track_score": (0, 1),
    "match_cost": (0, 1), "low_match_cost": (0, 1), "unconfirmed_cost": (0, 1),
    "duplicate_iou": (0, 1), "max_inside": (0, 1), "lost_seconds": (0, 3600),
    "std_position": (0, 10), "std_velocity": (0, 10), "buffer_sigmas": (0, 10),
    "min_hits": (1, 1000), "appearance_thresh": (0, 1), "proximity_iou": (0, 1),
    "lost_proximity_iou": (0, 1), "appearance_weight": (0, 10),
    "appearance_veto": (0, 1), "feature_momentum": (0, 1),
    "coast_seconds": (0, 60), "coast_cover": (0, 1), "coast_fit": (0, 1),
    "coast_inside": (0, 1), "reid_thresh": (0, 1),
    "reid_reach": (0, 100), "reid_seconds": (0, 3600),
    "low_lost_frames": (0, 1000), "recover_iou": (0, 1), "high_quantile": (0, 1),
    "high_score_max": (0, 1), "new_track_margin": (0, 1), "score_memory": (1, 1_000_000),
    "fps_noise_power": (0, 3), "looks_buffer_sigmas": (0, 10)}
#: Allowed values of each choice parameter.
CHOICES: dict[str, tuple[str, ...]] = {
    "state": ("xyah", "xywh"), "output": ("filtered", "detection"),
    "appearance_fusion": ("sum", "min")}


@dataclass(frozen=True)
class ByteTrackConfig:
    """Tracker parameters (docs/guide/tracking.md explains them for users).

    "Appearance distance" is ``(1 - cosine similarity) / 2`` of two unit embeddings: 0 alike,
    1 opposite. Scores, IoUs, costs and shares are from 0 to 1 unless said otherwise.

    Attributes:
        high_score: detections scoring at least this (and ``high_quantile``'s threshold) are
            matched first and may start tracks.
        high_quantile: a detection is strong only if it also scores at least this quantile
            of the scores the stream's detector gave lately (:mod:`.scores`), capped at
            ``high_score_max``: detectors spread their scores differently; 0 switches it off.
        high_score_max: the most ``high_quantile`` may raise the strong threshold to.
        score_memory: about how many recent detections ``high_quantile`` reflects.
        low_score: detections scoring below this are ignored; between the two they only
            extend tracks (``low_score <= high_score``).
        new_track_score: the least score of a detection that starts a track.
        new_track_margin: a detection starts a track only if it also scores this share of
            the way from the frame's strong threshold to 1 (0.5: halfway), or the
            detector's median recent score if that is lower (with ``high_quantile``): a new
            object must be seen more surely than a known one; 0 leaves
            ``new_track_score`` alone.
        match_cost: first-stage cost limit, cost ``1 - IoU x score``.
        low_match_cost: second-stage (low-score) cost limit, cost ``1 - IoU``.
        unconfirmed_cost: cost limit for tracks not yet confirmed.
        min_hits: consecutive matches that confirm a track, 1 to 1000 (tracks of a stream's
            first frame are confirmed at once).
        lost_seconds: seconds a lost track waits to be matched again by motion, 0 to 3600.
        fuse_score: multiply IoU by the detection's score in the first stage.
        state: Kalman parametrisation, ``xyah`` (ByteTrack) or ``xywh`` (BoT-SORT).
        std_position: Kalman position noise, a fraction of the box size, 0 to 10.
        std_velocity: Kalman velocity noise per frame at 30 fps, a fraction of the box size,
            0 to 10.
        fps_noise_power: at F fps the velocity noise is ``std_velocity x (30 / F) ** this``:
            at lower frame rates an object's speed changes more from one frame to the next; 0
            keeps it per frame (ByteTrack), 1.5 is white-noise acceleration; 0 to 3.
        output: report ``filtered`` (Kalman-corrected) boxes or the matched ``detection``.
        duplicate_iou: a tracked and a lost track overlapping above this IoU are one object
            and the younger ends (ByteTrack's rule, there 0.85); 1 switches it off.
        max_inside: a new detection lying more than this share inside a box tracked in the
            same frame starts no track, unless, with embeddings, it looks unlike that track
            (distance above ``appearance_thresh``); 1 switches it off.
        buffer_sigmas: the first stage grows both boxes of a pair by this many standard
            deviations of the track's predicted position (buffered IoU), 0 to 10; 0 is
            plain IoU.
        looks_buffer_sigmas: the same for a track that has an appearance vector, when the
            detections carry vectors: the looks then vouch for a match found farther from
            the prediction (0 to 10).
        appearance: use the detections' ``data["embedding"]`` when they carry one; without
            embeddings the tracker is the same either way.
        appearance_thresh: appearance distance at or below which a pair's looks count as
            evidence.
        appearance_fusion: how looks enter a close, alike pair's cost: ``sum`` (the IoU cost
            less the looks' share, see ``appearance_weight``) or ``min`` (BoT-SORT's lower
            of the IoU cost and the distance).
        appearance_weight: with ``sum``, the most looks lower a cost (identical vectors),
            falling linearly to nothing at ``appearance_thresh``; 0 to 10.
        proximity_iou: looks only count for a pair overlapping at least this (buffered IoU
            in the first stage, plain IoU for unconfirmed tracks): they choose between
            nearby candidates, never pull a track across the frame.
        lost_proximity_iou: the same gate for lost tracks, whose objects reappear away from
            their prediction.
        appearance_veto: a pair whose appearance distance exceeds this gets a cost above
            every limit; 1 switches the veto off.
        feature_momentum: weight of a track's old embedding in its moving average (learnt
            from high-score matches only: weak detections are often occluded).
        coast_seconds: seconds a lost track is still reported at its predicted box
            (``data["coasted"]`` True), 0 to 60; 0 reports only what was detected.
        coast_cover: the least share of a coasted box that boxes tracked in the same frame
            must cover (0: any lost track; 1: only one wholly hidden behind another).
        coast_fit: only tracks whose smoothed IoU between predicted and matched boxes is at
            least this coast (0: any).
        coast_inside: only a lost track whose predicted box lies at least this share inside
            the frame coasts (objects leaving the picture do not); needs the frame size, 0
            switches it off.
        low_lost_frames: tracks lost for at most this many frames (not seconds: a
            detector's misses flicker frame by frame) also take part in the low-score stage,
            0 to 1000; 0 is ByteTrack's rule (tracked tracks only).
        recover_iou: lost tracks still unmatched after the first stage take remaining
            high-score detections that overlap their *last detected* box by at least this
            IoU and look alike (OC-SORT's recovery); needs embeddings, 0 switches it off.
        reid_thresh: lost tracks take remaining high-score detections of their class by
            appearance alone, at distances up to this, within ``reid_reach``; 0 switches it
            off.
        reid_reach: how far from a lost track's predicted centre a detection may be to be
            re-identified as it, in the track's larger box side, 0 to 100.
        reid_seconds: seconds a lost track with an embedding waits to be re-identified, 0 to
            3600 (counted only above ``lost_seconds``); past ``lost_seconds`` it takes part
            in re-identification alone.
    """

    high_score: float = 0.4
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_cost: float = 0.8
    low_match_cost: float = 0.5
    unconfirmed_cost: float = 0.7
    min_hits: int = 2
    lost_seconds: float = 1.5
    fuse_score: bool = False
    state: str = "xyah"
    std_position: float = 1.0 / 20
    std_velocity: float = 1.0 / 160
    output: str = "filtered"
    duplicate_iou: float = 1.0
    max_inside: float = 0.8
    buffer_sigmas: float = 0.0
    looks_buffer_sigmas: float = 2.0
    appearance: bool = True
    appearance_thresh: float = 0.1
    appearance_fusion: str = "sum"
    appearance_weight: float = 1.0
    proximity_iou: float = 0.3
    lost_proximity_iou: float = 0.1
    appearance_veto: float = 0.25
    feature_momentum: float = 0.9
    coast_seconds: float = 0.2
    coast_cover: float = 0.0
    coast_fit: float = 0.65
    coast_inside: float = 0.7
    reid_thresh: float = 0.05
    reid_reach: float = 5.0
    reid_seconds: float = 4.0
    low_lost_frames: int = 2
    recover_iou: float = 0.3
    high_quantile: float = 0.25
    high_score_max: float = 0.85
    score_memory: int = 2000
    fps_noise_power: float = 0.5
    new_track_margin: float = 0.5

    def __post_init__(self) -> None:
        """Refuse values the tracker cannot work with (each error names the parameter)."""
        for key, (low, high) in RANGES.items():
            value = getattr(self, key)
            if not low <= value <= high:  # NaN fails too
                raise UserInputError(f"tracker parameter {key} must be from {low} to {high}, "
                                     f"got {value!r}")
        if self.low_score > self.high_score:
            raise UserInputError(f"tracker parameter low_score ({self.low_score}) must not "
                                 f"exceed high_score ({self.high_score})")
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise UserInputError(f"tracker parameter {key} must be {' or '.join(allowed)}, "
                                     f"got {getattr(self, key)!r}")

    def to_dict(self) -> dict:
        """Every parameter by name."""
        return asdict(self)
