"""Per-track state of every rule at once: one column per track, one row per rule.

Each frame brings a few dozen tracks and a set of rules; the rules' decisions are numpy
operations on ``[rules, tracks]`` arrays, so their cost hardly grows with the number of rules.
Columns are kept sorted by track id, found with ``searchsorted``; new tracks add columns and
ended ones remove them (both rare next to frames).
"""

from __future__ import annotations

import numpy as np


class TrackColumns:
    """Arrays of shape ``[rows, tracks]`` (or ``[tracks]``) kept aligned with sorted track ids.

    Args:
        rows: rules (rows of the 2-D arrays).
        fields: name → (dtype, fill value, per-rule or not) of each array.
    """

    def __init__(self, rows: int, fields: dict[str, tuple[type, object, bool]]) -> None:
        self.rows = rows
        self.fields = fields
        self.ids = np.zeros(0, np.int64)
        self.arrays: dict[str, np.ndarray] = {
            name: np.full((rows, 0) if per_rule else (0,), fill, dtype)
            for name, (dtype, fill, per_rule) in fields.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, track_ids: np.ndarray) -> np.ndarray:
        """The column of each id in ``track_ids`` (ids >= 0), adding columns for new ones."""
        pos = np.searchsorted(self.ids, track_ids)
        known = pos < len(self.ids)
        known[known] = self.ids[pos[known]] == track_ids[known]
        if not known.all():
            self._add(np.unique(track_ids[~known]))
            pos = np.searchsorted(self.ids, track_ids)
        return pos

    def _add(self, new: np.ndarray) -> None:
        at = np.searchsorted(self.ids, new)
        self.ids = np.insert(self.ids, at, new)
        for name, (_, fill, per_rule) in self.fields.items():
            self.arrays[name] = np.insert(self.arrays[name], at, fill, axis=1 if per_rule else 0)

    def drop(self, columns: np.ndarray) -> None:
        """Remove these columns (ended or long unseen tracks)."""
        if len(columns):
            self.ids = np.delete(self.ids, columns)
            for name, (_, _, per_rule) in self.fields.items():
                self.arrays[name] = np.delete(self.arrays[name], columns,
                                              axis=1 if per_rule else 0)

    def column(self, track_id: int) -> int | None:
        """The column of one track id, or ``None``."""
        at = int(np.searchsorted(self.ids, track_id))
        return at if at < len(self.ids) and self.ids[at] == track_id else None
