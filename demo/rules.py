"""Counting lines and watched areas on the page: the rules a visitor draws (named for them,
checked by the run options' own kinds), and what the page is told about them while a session
runs (counts a few times a second, events as they happen) or after an upload.

The rules are page settings like the model or the thresholds (``lines``, ``areas`` and
``dwell`` of :data:`~detstream.demo.state.PAGE_OPTIONS`): one set per page, used by every tab,
in the pixels of the frames they are drawn on.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from detstream.demo.state import LiveSettings, Registry
from detstream.engines.errors import UserInputError
from detstream.stream.analytics import RuleEvent, Rules
from detstream.stream.analytics.draw import draw_rules
from detstream.stream.pipeline.packet import FramePacket
from detstream.stream.run_config import RunConfig

#: The settings that are rules: a running session cannot take them in flight
#: (``Session.reconfigure`` refuses them), so a live session restarts to apply them.
RULE_FIELDS = ("lines", "areas", "dwell")
KINDS = ("line", "area")
#: At most this many lines and areas together on one page, and corners in one area: a page
#: is a person clicking, and every rule costs each frame a little.
MAX_RULES = 12
MAX_CORNERS = 24
#: Points must lie inside the largest frame a source may have (8K): an area's map is an
#: image of its bounding box, so a far-away corner would cost memory.
MAX_COORD = 8192.0
#: Counts go to a live page at most this often (and at once with an event).
ANALYTICS_EVERY_S = 0.25
#: The events a page lists, newest first.
EVENTS_SHOWN = 20
#: A click this close to an area's first corner (a share of the frame's longer side, at
#: least CLOSE_MIN_PX) closes the area.
CLOSE_FRACTION = 0.02
CLOSE_MIN_PX = 8.0
DRAFT_COLOUR = (0, 215, 255)  # BGR: amber, apart from the drawn rules' white and blue

# --------------------------------------------------------------------------- editing


def _checked_points(kind: str, points: Any) -> list[list[float]]:
    """``points`` as the page sent them: a list of ``[x, y]`` numbers inside the frame
    bounds (the line or area itself is checked by the run option's kind afterwards)."""
    if not isinstance(points, list | tuple) or not all(
            isinstance(p, list | tuple) and len(p) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
            for p in points):
        raise UserInputError(f"a {kind}'s points must be [[x, y], ...] numbers, got "
                             f"{str(points)[:80]}")
    if kind == "area" and len(points) > MAX_CORNERS:
        raise UserInputError(f"an area takes at most {MAX_CORNERS} corners, got {len(points)}")
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= MAX_COORD
                and 0 <= y <= MAX_COORD):
            raise UserInputError(f"point ({x:g}, {y:g}) is outside the frame; click on the "
                                 "video")
    return [[round(float(x), 1), round(float(y), 1)] for x, y in points]


def next_name(kind: str, taken: Sequence[str]) -> str:
    """The next free automatic name: ``line1``, ``line2``, ... (``area1``, ...), one above
    the highest number in use, so a name is never reused while its rule is there."""
    numbers = [int(m.group(1)) for name in taken if (m := re.fullmatch(rf"{kind}(\d+)", name))]
    return f"{kind}{max(numbers, default=0) + 1}"


def rule_names(settings: LiveSettings) -> list[str]:
    """The names of the page's lines and areas, lines first."""
    return [spec.name for spec in (*(settings.lines or ()), *(settings.areas or ()))]


def add_rule(settings: LiveSettings, kind: str, points: Any) -> tuple[LiveSettings, str]:
    """``settings`` with one more line or area through ``points`` (frame pixels), named
    automatically; and that name.

    Raises:
        UserInputError: not a line or area, too many rules, or points that the ``lines`` /
            ``areas`` option refuses (in the option's own words).
    """
    if kind not in KINDS:
        raise UserInputError(f"a rule is a line or an area, got {str(kind)[:40]!r}")
    corners = _checked_points(kind, points)
    names = rule_names(settings)
    if len(names) >= MAX_RULES:
        raise UserInputError(f"a page takes at most {MAX_RULES} lines and areas; clear the "
                             "rules to draw new ones")
    name = next_name(kind, names)
    field = "lines" if kind == "line" else "areas"
    # The new rule as a mapping beside the specs already there: the option's kind reads both
    # and checks the whole list (two points, a polygon that does not cross itself, ...).
    rules = (*(getattr(settings, field) or ()), {"name": name, "points": corners})
    return LiveSettings(settings.config, **{field: rules}), name


def cleared(settings: LiveSettings) -> LiveSettings:
    """``settings`` without lines or areas (the loitering threshold stays)."""
    return LiveSettings(settings.config, lines=None, areas=None)


def rule_request(settings: LiveSettings, body: Any) -> tuple[LiveSettings, str]:
    """A page's rule change (``POST /detstream/api/rules``): ``{"action": "add", "kind":
    "line" | "area", "points": [[x, y], ...]}`` or ``{"action": "clear"}``. Returns the new
    settings and a sentence for the page.

    Raises:
        UserInputError: anything else, or a rule the options refuse.
    """
    if not isinstance(body, dict):
        raise UserInputError("expected a JSON object with an action")
    action = body.get("action")
    if action == "clear":
        return cleared(settings), "rules cleared"
    if action == "add":
        updated, name = add_rule(settings, body.get("kind"), body.get("points"))
        return updated, f"{name} added"
    raise UserInputError(f"unknown rule action {str(action)[:40]!r}; use add or clear")


def change_rules(registry: Registry, client: str, body: Any) -> tuple[LiveSettings, str]:
    """Apply a page's rule change (:func:`rule_request`) to its settings in one step;
    returns the new settings and a sentence for the page. Live sessions see the new
    version and start again with the rules.

    Raises:
        UserInputError: the change is refused; the settings stay as they were.
    """
    said: list[str] = []

    def change(current: LiveSettings) -> LiveSettings:
        updated, message = rule_request(current, body)
        said.append(message)
        return updated

    settings, _ = registry.amend(client, change)
    return settings, said[0]


def rules_view(settings: LiveSettings | RunConfig) -> dict:
    """The rules as the page draws and lists them: ``{"lines": [{"name", "points"}],
    "areas": [...], "dwell": seconds or None}``."""
    config = settings.config if isinstance(settings, LiveSettings) else settings
    return {"lines": [{"name": s.name, "points": [list(s.start), list(s.end)]}
                      for s in config.lines or ()],
            "areas": [{"name": s.name, "points": [list(p) for p in s.points]}
                      for s in config.areas or ()],
            "dwell": config.dwell}


def rules_differ(a: RunConfig, b: RunConfig) -> bool:
    """Whether two configs count differently: other lines or areas, or another loitering
    threshold where there are areas (without them it changes nothing: no restart)."""
    return (a.lines != b.lines or a.areas != b.areas
            or (a.dwell != b.dwell and bool(a.areas or b.areas)))


def with_rules_of(config: RunConfig, source: RunConfig) -> RunConfig:
    """``config`` with the lines, areas and loitering threshold of ``source``."""
    return replace(config, **{name: getattr(source, name) for name in RULE_FIELDS})


def rules_markdown(settings: LiveSettings) -> str:
    """The page's rules in a line of text (the Video file tab's note)."""
    parts = [f"line **{s.name}** ({s.start[0]:g},{s.start[1]:g} → {s.end[0]:g},{s.end[1]:g})"
             for s in settings.lines or ()]
    parts += [f"area **{s.name}** ({len(s.points)} corners)" for s in settings.areas or ()]
    if not parts:
        return "No lines or areas yet."
    dwell = settings.dwell
    loiter = f"; loitering after {dwell:g} s" if dwell else ""
    return "Rules: " + ", ".join(parts) + loiter + "."


# --------------------------------------------------------------------------- drawing


def close_distance(width: int, height: int) -> float:
    """How near an area's first corner a click closes the area, in frame pixels."""
    return max(CLOSE_MIN_PX, CLOSE_FRACTION * max(width, height))


def draw_page_rules(image: np.ndarray, settings: LiveSettings, draft_kind: str | None = None,
                    draft: Sequence[Sequence[float]] = ()) -> np.ndarray:
    """``image`` (BGR, not changed) with the page's rules as runs draw them (counts at zero)
    and the rule being drawn (``draft``: its points so far) over them."""
    out = image.copy()
    if settings.lines or settings.areas:
        draw_rules(out, Rules(settings.lines or (), settings.areas or ()))
    if draft:
        thick = max(1, round(out.shape[0] / 360))
        points = np.round(np.asarray(draft, np.float64)).astype(np.int32)
        if len(points) > 1:
            cv2.polylines(out, [points.reshape(-1, 1, 2)], False, DRAFT_COLOUR, thick + 1,
                          cv2.LINE_AA)
        for i, (x, y) in enumerate(points.tolist()):
            radius = 3 * thick + (2 if i == 0 and draft_kind == "area" else 0)
            cv2.circle(out, (x, y), radius, DRAFT_COLOUR, -1, cv2.LINE_AA)
    return out


def first_frame(path: str | None) -> np.ndarray | None:
    """The first frame of the video at ``path`` (BGR), or ``None`` when there is none."""
    if not path:
        return None
    capture = cv2.VideoCapture(str(path))
    try:
        ok, image = capture.read()
    finally:
        capture.release()
    return image if ok and image is not None and image.size else None


# --------------------------------------------------------------------------- counts


def analytics_summary(report: dict) -> dict:
    """A rules report (:meth:`Rules.report`, or a run report's ``analytics``) as the page
    shows it: per line ``in``, ``out`` and per class ``[in, out]``; per area ``inside``,
    ``entries``, ``exits`` and the ``longest`` stay so far in seconds."""
    lines = []
    for name, counts in report.get("lines", {}).items():
        classes = sorted(set(counts["in"]) | set(counts["out"]))
        lines.append({"name": name, "in": counts["in_total"], "out": counts["out_total"],
                      "classes": {c: [counts["in"].get(c, 0), counts["out"].get(c, 0)]
                                  for c in classes}})
    areas = [{"name": name, "inside": sum(counts["occupancy"].values()),
              "entries": counts["entries_total"], "exits": counts["exits_total"],
              "longest": (None if counts["dwell_max_s"] is None
                          else round(counts["dwell_max_s"], 1))}
             for name, counts in report.get("areas", {}).items()]
    return {"lines": lines, "areas": areas}


class AnalyticsFeed:
    """What one live session tells its page about the rules, added to the frames' result
    headers: ``rule_events`` (every rule event since the last result, at most
    :data:`EVENTS_SHOWN`, as the JSON Lines write them) and ``analytics``
    (:func:`analytics_summary`), sent when it changed, at most every ``every`` seconds or
    at once with an event. Called from the pipeline's output thread only.
    """

    def __init__(self, every: float = ANALYTICS_EVERY_S, clock=time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._events: deque[dict] = deque(maxlen=EVENTS_SHOWN)
        self._last: dict | None = None
        self._checked = -math.inf

    def take(self, packet: FramePacket) -> None:
        """Keep ``packet``'s rule events (its track events are not the page's list)."""
        self._events.extend(e.to_dict() for e in packet.events if isinstance(e, RuleEvent))

    def header(self, rules: Rules | None) -> dict:
        """The fields to add to the next result's header (empty when nothing is new)."""
        out: dict = {}
        if self._events:
            out["rule_events"] = list(self._events)
            self._events.clear()
        now = self.clock()
        if rules is None or (not out and now - self._checked < self.every):
            return out
        self._checked = now
        summary = analytics_summary(rules.report())
        if summary != self._last:
            out["analytics"] = self._last = summary
        return out


def _clock(seconds: float) -> str:
    """Video time as ``m:ss.s``."""
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def event_detail(event: dict) -> str:
    """What an event adds to its kind: the direction of a crossing, the stay of an exit or a
    loitering."""
    if "direction" in event:
        return event["direction"]
    if "dwell_s" in event:
        return f"{event['dwell_s']:.1f} s inside"
    return ""


def upload_rules_markdown(analytics: dict | None, events: Sequence[dict], total: int) -> str:
    """The counts and the last events of an uploaded video's rules (empty without rules):
    ``analytics`` is the run report's, ``events`` the last ones (dicts as in the JSON Lines),
    ``total`` how many there were."""
    if not analytics:
        return ""
    summary = analytics_summary(analytics)
    out: list[str] = ["", "", "**Lines and areas** (counted over the whole video)"]
    if summary["lines"]:
        out += ["", "| line | in | out | by class (in / out) |", "|---|---|---|---|"]
        for line in summary["lines"]:
            by_class = ", ".join(f"{c} {i} / {o}" for c, (i, o) in line["classes"].items())
            out.append(f"| {line['name']} | {line['in']} | {line['out']} | {by_class or '–'} |")
    if summary["areas"]:
        out += ["", "| area | entered | left | inside at the end | longest stay |",
                "|---|---|---|---|---|"]
        for area in summary["areas"]:
            longest = "–" if area["longest"] is None else f"{area['longest']:.1f} s"
            out.append(f"| {area['name']} | {area['entries']} | {area['exits']} | "
                       f"{area['inside']} | {longest} |")
    out.append("")
    if not total:
        out.append("No rule events.")
        return "\n".join(out)
    shown = f"the last {len(events)} of {total}" if total > len(events) else f"all {total}"
    out += [f"Events ({shown}; every one is in the JSON Lines file):", "",
            "| time | event | rule | track | detail |", "|---|---|---|---|---|"]
    for event in reversed(events):  # newest first, as the live list
        out.append(f"| {_clock(event['time'])} | {event['event']} | {event['rule']} | "
                   f"#{event['track_id']} {event['class']} | {event_detail(event) or '–'} |")
    return "\n".join(out)
