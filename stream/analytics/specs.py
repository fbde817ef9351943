"""Lines and areas as users write them: one command-line word each (``door:100,300,500,300``,
``'counter:100,100 300,100 300,300'``), or a YAML/Python mapping with more settings
(``{name: door, points: [[100, 300], [500, 300]], classes: [person], anchor: center}``).

Every reader raises ``ValueError`` with a sentence saying what is wrong and how to write it;
the run options turn that into the option's own error line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detstream.stream.analytics.areas import AreaSpec
from detstream.stream.analytics.geometry import ANCHORS, DEFAULT_ANCHOR
from detstream.stream.analytics.lines import LineSpec

LINE_FORM = "NAME:X1,Y1,X2,Y2, e.g. door:100,300,500,300"
AREA_FORM = "'NAME:X,Y X,Y X,Y ...', e.g. 'counter:100,100 300,100 300,300'"
_KEYS = {"name", "points", "classes", "anchor", "dwell"}


def _name_and_rest(text: str, form: str) -> tuple[str, str]:
    name, colon, rest = str(text).partition(":")
    if not colon or not name.strip() or not rest.strip():
        raise ValueError(f"{text!r} is not NAME:POINTS; write {form}")
    return name.strip(), rest


def _numbers(text: str, form: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"{text!r} holds something other than numbers; write {form}") from None


def _points(value: Any, name: str) -> list[tuple[float, float]]:
    ok = isinstance(value, Sequence) and not isinstance(value, str) and all(
        isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        for p in value)
    if not ok:
        raise ValueError(f"{name}: points must be [[x, y], ...], got {value!r}")
    return [(float(x), float(y)) for x, y in value]


def _settings(value: Mapping, kind: str) -> tuple[str, Any, dict]:
    known = _KEYS if kind == "area" else _KEYS - {"dwell"}  # loitering is an area's
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"a {kind} has no setting {unknown[0]!r}; it takes "
                         f"{', '.join(sorted(known))}")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a {kind} needs a name, got {name!r}")
    extra: dict[str, Any] = {}
    classes = value.get("classes")
    if classes is not None:
        items = [classes] if isinstance(classes, str) else classes
        if not isinstance(items, Sequence) or not all(isinstance(c, str) for c in items):
            raise ValueError(f"{name}: classes must be a list of class names, got {classes!r}")
        extra["classes"] = tuple(items) or None
    anchor = value.get("anchor", DEFAULT_ANCHOR)
    if anchor not in ANCHORS:
        raise ValueError(f"{name}: unknown anchor {anchor!r}; use one of {', '.join(ANCHORS)}")
    extra["anchor"] = anchor
    return name.strip(), value.get("points"), extra


def line_spec(value: Any) -> LineSpec:
    """A :class:`LineSpec` from a word, a mapping or a spec."""
    if isinstance(value, LineSpec):
        return value
    if isinstance(value, Mapping):
        name, points, extra = _settings(value, "line")
        corners = _points(points, name)
    elif isinstance(value, str):
        name, rest = _name_and_rest(value, LINE_FORM)
        numbers = _numbers(rest, LINE_FORM)
        if len(numbers) != 4:
            raise ValueError(f"line {name!r} needs two points (four numbers), got "
                             f"{len(numbers)}; write {LINE_FORM}")
        corners, extra = [tuple(numbers[:2]), tuple(numbers[2:])], {}
    else:
        raise ValueError(f"expected a line, got {value!r}; write {LINE_FORM}")
    if len(corners) != 2:
        raise ValueError(f"line {name!r} needs exactly two points, got {len(corners)}")
    if corners[0] == corners[1]:
        raise ValueError(f"line {name!r} starts and ends at the same point")
    return LineSpec(name, corners[0], corners[1], **extra)


def area_spec(value: Any) -> AreaSpec:
    """An :class:`AreaSpec` from a word, a mapping or a spec."""
    from detstream.engines.errors import UserInputError
    from detstream.stream.zones import Zone

    if isinstance(value, AreaSpec):
        return value
    extra: dict[str, Any] = {}
    if isinstance(value, Mapping):
        name, points, extra = _settings(value, "area")
        corners = _points(points, name)
        dwell = value.get("dwell")
        if dwell is not None and (isinstance(dwell, bool) or not isinstance(dwell, int | float)
                                  or not dwell > 0):
            raise ValueError(f"{name}: dwell must be a number of seconds above 0, got {dwell!r}")
        extra["dwell"] = None if dwell is None else float(dwell)
    elif isinstance(value, str):
        name, rest = _name_and_rest(value, AREA_FORM)
        numbers = _numbers(rest, AREA_FORM)
        if len(numbers) % 2:
            raise ValueError(f"area {name!r} has an odd count of numbers; write {AREA_FORM}")
        corners = list(zip(numbers[::2], numbers[1::2], strict=True))
    else:
        raise ValueError(f"expected an area, got {value!r}; write {AREA_FORM}")
    if len(corners) < 3:
        raise ValueError(f"area {name!r} needs three or more corners, got {len(corners)}")
    try:
        Zone(corners)
    except UserInputError as exc:
        raise ValueError(f"area {name!r}: {exc}") from None
    return AreaSpec(name, tuple(corners), **extra)


def _many(value: Any, read, what: str) -> tuple:
    items = [value] if isinstance(value, str | Mapping | LineSpec | AreaSpec) else value
    if not isinstance(items, Sequence):
        raise ValueError(f"expected a list of {what}, got {value!r}")
    specs = tuple(read(item) for item in items)
    names = [spec.name for spec in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"two {what} are named {repeated[0]!r}; give each its own name")
    return specs


def line_specs(value: Any) -> tuple[LineSpec, ...]:
    """Lines from one word or mapping, or a list of them (names must differ)."""
    return _many(value, line_spec, "lines")


def area_specs(value: Any) -> tuple[AreaSpec, ...]:
    """Areas from one word or mapping, or a list of them (names must differ)."""
    return _many(value, area_spec, "areas")


#: What a rules file (``--rules FILE.yaml``) holds, each optional.
RULES_FILE_KEYS = ("lines", "areas", "dwell")


@dataclass(frozen=True)
class RulesFile:
    """A rules file's lines, areas and loitering threshold (``None`` where it has none)."""

    lines: tuple[LineSpec, ...] | None = None
    areas: tuple[AreaSpec, ...] | None = None
    dwell: float | None = None


def read_rules_file(path: str | Path) -> RulesFile:
    """The lines, areas and ``dwell`` of a YAML (or JSON) rules file, e.g.::

        lines:
          - door:100,300,500,300
          - {name: exit, points: [[620, 432], [620, 240]], classes: [person]}
        areas:
          - 'counter:100,100 300,100 300,300'
          - {name: desk, points: [[0, 0], [50, 0], [50, 50]], dwell: 120}
        dwell: 60

    Raises:
        UserInputError: the file cannot be read or holds a mistake: one line naming the
            file, what is wrong and how to write it.
    """
    import yaml

    from detstream.engines.errors import UserInputError

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserInputError(f"cannot read the rules file {path}: {exc.strerror or exc}") \
            from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise UserInputError(f"the rules file {path} is not valid YAML{at}; write 'lines:' "
                             "and 'areas:' lists") from None
    if not isinstance(data, Mapping) or not data:
        raise UserInputError(f"the rules file {path} holds no rules; write a 'lines:' or "
                             "'areas:' list")
    unknown = sorted(str(k) for k in data if k not in RULES_FILE_KEYS)
    if unknown:
        raise UserInputError(f"the rules file {path} has an unknown key {unknown[0]!r}; it "
                             f"takes {', '.join(RULES_FILE_KEYS)}")
    for key in ("lines", "areas"):
        items = data.get(key)
        if isinstance(items, list) and any(isinstance(v, int | float) for v in items):
            # `lines: [door:1,2,3,4]` reads as four items: YAML's [...] splits at commas
            raise UserInputError(f"the rules file {path}: its {key} list was split at the "
                                 "commas; write one per line after '- ', or quote each "
                                 "('door:1,2,3,4')")
    try:
        lines = line_specs(data["lines"]) if data.get("lines") else None
        areas = area_specs(data["areas"]) if data.get("areas") else None
    except ValueError as exc:
        raise UserInputError(f"the rules file {path}: {exc}") from None
    dwell = data.get("dwell")
    if dwell is not None and (isinstance(dwell, bool) or not isinstance(dwell, int | float)
                              or not dwell > 0):
        raise UserInputError(f"the rules file {path}: dwell must be a number of seconds "
                             f"above 0, got {dwell!r}")
    return RulesFile(lines, areas, None if dwell is None else float(dwell))


def merged_rules(path: str | Path | None, lines: tuple | None, areas: tuple | None,
                 dwell: float | None) -> tuple[tuple | None, tuple | None, float | None]:
    """A rules file's lines and areas followed by those given as options (one name twice
    is refused), and the options' ``dwell`` before the file's."""
    if path is None:
        return lines, areas, dwell
    from detstream.engines.errors import UserInputError

    found = read_rules_file(path)
    try:
        lines = line_specs((*(found.lines or ()), *(lines or ()))) or None
        areas = area_specs((*(found.areas or ()), *(areas or ()))) or None
    except ValueError as exc:
        raise UserInputError(f"{exc} (the rules file {path} and the options)") from None
    return lines, areas, dwell if dwell is not None else found.dwell
