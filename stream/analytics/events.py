"""What a rule reports on a frame."""

from __future__ import annotations

from dataclasses import dataclass

#: Every kind of rule event.
EVENT_KINDS = ("line_crossed", "zone_entered", "zone_left", "dwell_exceeded")


@dataclass(frozen=True)
class RuleEvent:
    """One thing a rule saw happen to one track on one frame.

    Attributes:
        kind: one of :data:`EVENT_KINDS`.
        rule: the line's or area's name.
        track_id: the track it happened to.
        class_id: the track's class then; ``class_name`` its name.
        frame: the frame's index in its stream.
        time: seconds on the stream's clock (the frame's timestamp).
        direction: ``line_crossed``: ``in`` or ``out``.
        dwell: ``zone_left`` and ``dwell_exceeded``: seconds the track had been inside.
    """

    kind: str
    rule: str
    track_id: int
    class_id: int
    class_name: str
    frame: int
    time: float
    direction: str | None = None
    dwell: float | None = None

    def to_dict(self) -> dict:
        """The event as the JSON Lines and the API give it (``event`` names its kind, as a
        track event's does)."""
        record = {"event": self.kind, "rule": self.rule, "track_id": self.track_id,
                  "class_id": self.class_id, "class": self.class_name, "frame": self.frame,
                  "time": round(self.time, 3)}
        if self.direction is not None:
            record["direction"] = self.direction
        if self.dwell is not None:
            record["dwell_s"] = round(self.dwell, 3)
        return record
