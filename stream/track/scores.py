"""Which detection scores count as strong, learnt from the stream's own detector.

Detectors differ in how they spread their scores: the MOTChallenge public Faster R-CNN
detections put three quarters of their boxes above 0.85, where a false box may still score
0.8, while YOLOX-Nano gives a clearly seen person 0.6 to 0.9. A fixed "strong" threshold suits
one of them. :class:`ScoreScale` keeps a fading histogram of the scores a stream's detector has
given lately and places the threshold at a low quantile of them: a detection is strong when it
scores at least as well as most of what this detector reports, within fixed bounds.
"""

from __future__ import annotations

import numpy as np

#: Histogram bins over [0, 1] (the last holds scores of exactly 1).
BINS = 100
#: Detections seen before the quantile is trusted; until then the fixed threshold holds.
WARMUP = 20


class ScoreScale:
    """A fading histogram of detection scores and the strong-score threshold it gives.

    Args:
        quantile: the threshold's place among recent scores (0.25: a quarter of them lie
            below it); 0 keeps the fixed ``floor``.
        floor: the least threshold (the fixed one, also used until :data:`WARMUP`
            detections have been seen).
        ceiling: the greatest threshold (at least ``floor``).
        memory: about how many recent detections the histogram reflects (each new score
            fades the older ones by ``1 - 1 / memory``).
        low: scores below this are not detections the tracker uses and are not counted.
    """

    def __init__(self, quantile: float, floor: float, ceiling: float, memory: int,
                 low: float) -> None:
        self.quantile = quantile
        self.floor = floor
        self.ceiling = max(ceiling, floor)
        self.fade = 1.0 - 1.0 / max(memory, 1)
        self.low = low
        self.reset()

    def reset(self) -> None:
        """Forget every score (a new stream, maybe from another detector)."""
        self.counts = np.zeros(BINS + 1)
        self.cumulative = self.counts  # running sums of the counts, kept with them
        self.seen = 0

    def threshold(self, scores: np.ndarray) -> float:
        """Count this frame's ``scores`` and return the strong-score threshold for it."""
        if self.quantile <= 0:
            return self.floor
        used = np.asarray(scores, np.float64)  # the tracker compares in float64 too
        used = used[used >= self.low]
        if len(used):
            self.counts *= self.fade ** len(used)
            self.counts += np.bincount((np.minimum(used, 1.0) * BINS).astype(np.int64),
                                       minlength=BINS + 1)
            self.cumulative = np.cumsum(self.counts)
            self.seen += len(used)
        if self.seen < WARMUP:
            return self.floor
        return min(max(self.quantile_of(self.quantile), self.floor), self.ceiling)

    def quantile_of(self, q: float) -> float | None:
        """The score below which a share ``q`` of the recent scores lie (the lower edge of its
        histogram bin, so every score in that bin reaches it); None before :data:`WARMUP`."""
        if self.seen < WARMUP:
            return None
        at = int(np.searchsorted(self.cumulative, q * self.cumulative[-1]))
        return at / BINS - 1e-9  # less a hair: a score on the bin's edge, rounded, reaches it

    def typical(self) -> float | None:
        """The median recent score (None before :data:`WARMUP` detections)."""
        return self.quantile_of(0.5)
