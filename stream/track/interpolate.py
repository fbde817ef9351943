"""Offline gap filling: linear interpolation of each track across the frames it was lost.

An online tracker can only say where an occluded object *might* be; once the whole sequence is
known (``detstream track`` on a detection file, a finished video), a track that was lost and
then found again with the same id was occluded in between, and the straight line between its
last box before and its first box after is a far better answer than nothing. This is the
post-processing ByteTrack and most MOTChallenge entries apply offline. Gaps are never longer
than the tracker's lost-track buffer, since a track lost for longer ends and cannot be found
again; ``max_gap`` can cap them further.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from detstream.engines.spec import Detections


def interpolate_tracks(frames: Mapping[int, Detections], max_gap: int | None = None,
                       ) -> tuple[dict[int, Detections], int]:
    """Fill every gap inside each track with linearly interpolated boxes.

    Args:
        frames: ``{frame: Detections}`` with track ids (untracked rows, id ``-1``, pass
            through untouched).
        max_gap: longest gap in frames to fill (``None``: every gap).

    Returns:
        ``(frames, added)``: new per-frame detections, sorted by frame, holding every input row
        plus the interpolated ones (their score is the lower of the two ends), and how many
        rows were added.
    """
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
    if max_gap is not None:
        gap &= step - 1 <= max_gap
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
