"""Answers from the tracks: counting lines, watched areas with dwell time, and the events they
raise (issue 37).

- :mod:`.geometry` — where a box stands (its anchor) and which side of a line that is;
- :mod:`.lines` — :class:`CountingLine`: crossings per direction and class, once per track;
- :mod:`.areas` — :class:`WatchedArea`: occupancy, entries, exits, dwell time, loitering;
- :mod:`.events` — :class:`RuleEvent`, what a rule reports on a frame;
- :mod:`.rules` — :class:`Rules`: every rule of one stream, fed the tracks frame by frame.
"""

from detstream.stream.analytics.areas import AreaSpec, WatchedArea
from detstream.stream.analytics.events import RuleEvent
from detstream.stream.analytics.lines import CountingLine, LineSpec
from detstream.stream.analytics.rules import Rules

__all__ = ["AreaSpec", "CountingLine", "LineSpec", "RuleEvent", "Rules", "WatchedArea"]
