"""Offline gap filling: linear interpolation of each track across the frames it was lost.

An online tracker can only say where an occluded object *might* be; once the whole sequence is
known (``detstream track`` on a detection file, a finished video), a track that was lost and
then found again with the same id was occluded in between, and the straight line between its
last box before and its first box after is a far better answer than nothing. This is the
post-processing ByteTrack and most MOTChallenge entries apply offline.

A filled box is a claim that the object was there, so only gaps the track's own motion
vouches for are filled (:class:`GapFill`): short in seconds (the frame rate converts them, so a
25 fps sequence read as 30 fps does not fill longer gaps), and ending where the track's
constant-velocity motion before the gap says it should be. A track found again far from that
point may have been re-matched to a different object, and a straight line would invent a
path for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from detstream.engines.errors import UserInputError
from detstream.engines.spec import Detections


@dataclass(frozen=True)
class GapFill:
    """Which gaps inside a track are filled.

    Attributes:
        max_seconds: the longest gap filled, in seconds of the sequence.
        max_jump: how far the box found after the gap may lie from where the track's motion
            before the gap predicts it: centre distance over the box's size (the mean of its
            width and height). ``inf`` fills whatever the tracker matched.
        history: frames before the gap the velocity is measured over (fewer when the track
            is younger; a track seen once is taken to stand still).
    """

    max_seconds: float = 0.5  # the seven MOT15 sequences: no sequence loses MOTA (BENCHMARKS.md)
    max_jump: float = 0.25
    history: int = 5

    def __post_init__(self) -> None:
        if not self.max_seconds >= 0:
            raise UserInputError(f"gap filling: max_seconds must be >= 0, got {self.max_seconds}")
        if not self.max_jump >= 0:
            raise UserInputError(f"gap filling: max_jump must be >= 0, got {self.max_jump}")
        if self.history < 1:
            raise UserInputError(f"gap filling: history must be >= 1, got {self.history}")

    def max_frames(self, fps: float) -> int:
        """The longest gap filled at ``fps``, in frames."""
        return int(np.floor(self.max_seconds * fps + 1e-9))


def predicted_jumps(frames: np.ndarray, boxes: np.ndarray, starts: np.ndarray,
                    ends: np.ndarray, first: np.ndarray, history: int) -> np.ndarray:
    """For each gap from row ``starts[k]`` to row ``ends[k]`` (rows sorted by track, then
    frame; ``first[k]`` the row where that track begins): the distance between the box found
    after the gap and the track's constant-velocity prediction for that frame, in box sizes."""
    back = starts - np.minimum(history, starts - first)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    span = (frames[starts] - frames[back]).astype(np.float64)
    velocity = np.zeros((len(starts), 2))
    moving = span > 0
    velocity[moving] = (centre[starts[moving]] - centre[back[moving]]) / span[moving, None]
    ahead = (frames[ends] - frames[starts]).astype(np.float64)[:, None]
    predicted = centre[starts] + velocity * ahead
    wh = boxes[:, 2:] - boxes[:, :2]
    size = np.maximum((wh[starts].mean(axis=1) + wh[ends].mean(axis=1)) / 2.0, 1e-6)
    return np.linalg.norm(centre[ends] - predicted, axis=1) / size


def interpolate_tracks(frames: Mapping[int, Detections], fps: float,
                       fill: GapFill | None = None) -> tuple[dict[int, Detections], int]:
    """Fill the gaps inside each track that ``fill`` allows with linearly interpolated boxes.

    Args:
        frames: ``{frame: Detections}`` with track ids (untracked rows, id ``-1``, pass
            through untouched).
        fps: the sequence's frame rate (gaps are limited in seconds).
        fill: which gaps to fill (default :class:`GapFill`).

    Returns:
        ``(frames, added)``: new per-frame detections, sorted by frame, holding every input row
        but the tracker's coasted ones (``data["coasted"]``) plus the interpolated ones
        (their score is the lower of the two ends), and how many rows were added.
    """
    fill = fill or GapFill()
    if not fps > 0:
        raise UserInputError(f"gap filling needs the frame rate, got {fps}")
    # The online tracker's guesses for unseen tracks (its coasted boxes) give way: a gap
    # between two sightings is filled by the straight line, and a guess no later sighting
    # vouches for is dropped.
    frames = {f: d[~d.data["coasted"]] if "coasted" in d.data else d for f, d in frames.items()}
    rows = [(f, d) for f, d in sorted(frames.items()) if len(d)]
    names = next((d.class_names for _, d in rows if d.class_names), ())
    if not rows:
        return {f: d for f, d in sorted(frames.items())}, 0
    frame_col = np.concatenate([np.full(len(d), f, np.int64) for f, d in rows])
    ids = np.concatenate([d.track_ids for _, d in rows])
    boxes = np.concatenate([d.boxes for _, d in rows])
    scores = np.concatenate([d.scores for _, d in rows])
    classes = np.concatenate([d.class_ids for _, d in rows])

    # Sort by (id, frame): consecutive rows of one id with a frame step above one are gaps.
    order = np.lexsort((frame_col, ids))
    f_s, id_s = frame_col[order], ids[order]
    step = np.diff(f_s)
    gap = (id_s[1:] == id_s[:-1]) & (id_s[1:] >= 0) & (step > 1)
    gap &= step - 1 <= fill.max_frames(fps)
    if np.isfinite(fill.max_jump) and gap.any():
        new_track = np.r_[True, id_s[1:] != id_s[:-1]]
        first = np.maximum.accumulate(np.where(new_track, np.arange(len(id_s)), 0))
        at = np.flatnonzero(gap)  # sorted positions of each gap's last row before it
        jumps = predicted_jumps(f_s, boxes[order], at, at + 1, first[at], fill.history)
        gap[at[jumps > fill.max_jump]] = False
    starts = order[:-1][gap]
    ends = order[1:][gap]
    lengths = step[gap] - 1  # missing frames per gap
    added = int(lengths.sum())
    if added:
        which = np.repeat(np.arange(len(starts)), lengths)
        # k-th missing frame of its gap, 1-based: offsets within each run of repeats.
        k = np.arange(added) - np.repeat(np.cumsum(lengths) - lengths, lengths) + 1
        a, b = starts[which], ends[which]
        w = (k / (lengths[which] + 1))[:, None]
        frame_col = np.concatenate([frame_col, frame_col[a] + k])
        ids = np.concatenate([ids, ids[a]])
        boxes = np.concatenate([boxes, ((1 - w) * boxes[a] + w * boxes[b]).astype(np.float32)])
        scores = np.concatenate([scores, np.minimum(scores[a], scores[b])])
        classes = np.concatenate([classes, classes[a]])

    out: dict[int, Detections] = {f: d for f, d in frames.items() if not len(d)}
    by_frame = np.argsort(frame_col, kind="stable")
    cuts = np.flatnonzero(np.diff(frame_col[by_frame])) + 1
    for chunk in np.split(by_frame, cuts):
        out[int(frame_col[chunk[0]])] = Detections(
            boxes=boxes[chunk], scores=scores[chunk], class_ids=classes[chunk],
            track_ids=ids[chunk], class_names=names)
    return dict(sorted(out.items())), added
