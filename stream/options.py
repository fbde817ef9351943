"""Run options, each declared once: name, type, default, range or choices, help, and where it is
shown.

An option is a field of :class:`~detstream.stream.run_config.RunConfig` (or of a dataclass
nested in it, such as :class:`~detstream.stream.draw.DrawConfig`) declared with
:func:`option`. Every surface derives from that one declaration:

- ``run``: ``detstream run``'s flags (:func:`add_arguments`, :func:`values_from_arguments`);
- ``demo``: the flags of ``detstream demo`` that set what the page starts with;
- ``page``: the page's settings controls (ranges, choices and defaults);
- ``fleet``: the keys of a stream in the fleet's cameras YAML;
- ``bench``: the model and tracker flags the pipeline benchmarks share;
- the Python API (``detstream.track(**options)``, ``RunConfig(...)``): every option.

A value is checked by its option's :class:`Kind`, which says what is wrong in words that are
the same on every surface; each surface only names the option its own way (``--conf``,
``streams[0] (gate).conf``, ``conf``).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from detstream.engines.errors import UserInputError

#: The surfaces an option can be shown on (see the module docstring).
SURFACES = ("run", "demo", "page", "fleet", "bench")


class OptionError(ValueError):
    """A value an option refuses; the message says what is wrong and what would do, without
    naming the option (each surface names it its own way)."""


# --------------------------------------------------------------------------------- kinds
@dataclass(frozen=True)
class Kind:
    """What values an option takes: :meth:`check` takes a Python or YAML value,
    :meth:`parse` a command-line word; both return the value the option holds or raise
    :class:`OptionError`."""

    #: Whether ``None`` is a value (an optional option).
    optional: bool = field(default=False, kw_only=True)

    def check(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        return self._check(value)

    def _check(self, value: Any) -> Any:
        return value

    def parse(self, text: str) -> Any:
        return self.check(text)

    def metavar(self) -> str | None:
        return None

    def bad_values(self) -> tuple[Any, ...]:
        """Values every surface must refuse (for the test that walks every option)."""
        return ()


@dataclass(frozen=True)
class Text(Kind):
    """A non-empty string (a model name, a device)."""

    def _check(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise OptionError(f"expected non-empty text, got {value!r}")
        return value.strip()

    def bad_values(self) -> tuple[Any, ...]:
        return ("",)


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``values``; ``none`` is the word that means ``None`` (``--tracker none``)."""

    values: tuple[str, ...] = ()
    noun: str = "value"
    none: str | None = None

    def _check(self, value: Any) -> str | None:
        if not isinstance(value, str) or value not in self.values:
            raise OptionError(f"unknown {self.noun} {value!r}; use one of "
                              f"{', '.join(self.values)}")
        return None if value == self.none else value

    def metavar(self) -> str:
        return "{" + ",".join(self.values) + "}"

    def bad_values(self) -> tuple[Any, ...]:
        return ("nonsense",)


@dataclass(frozen=True)
class Number(Kind):
    """A finite number from ``minimum`` to ``maximum`` (``above``: strictly above the
    minimum); ``whole`` for counts. ``rule`` replaces the range in messages."""

    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    whole: bool = False
    rule: str | None = None

    def describe(self) -> str:
        """The range in words: ``a number from 0 to 1``, ``a whole number of 1 or more``."""
        if self.rule:
            return self.rule
        noun = "a whole number" if self.whole else "a number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"{noun} from {low:g} to {high:g}"
        if low is not None:
            return f"{noun} above {low:g}" if self.above else f"{noun} of {low:g} or more"
        if high is not None:
            return f"{noun} of at most {high:g}"
        return noun

    def _check(self, value: Any) -> int | float:
        noun = "a whole number" if self.whole else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(f"expected {noun}, got {value!r}")
        if not math.isfinite(value):
            raise OptionError(f"expected a finite number, got {value}")
        if self.whole and not float(value).is_integer():
            raise OptionError(f"expected a whole number, got {value!r}")
        low, high = self.minimum, self.maximum
        too_low = low is not None and (value <= low if self.above else value < low)
        if too_low or (high is not None and value > high):
            side = "above" if not too_low else ("not above" if self.above else "below")
            bound = high if not too_low else low
            raise OptionError(f"{value:g} is {side} {bound:g}; give {self.describe()}")
        return int(value) if self.whole else float(value)

    def parse(self, text: str) -> Any:
        if self.optional and text.strip().lower() == "none":
            return None
        try:
            value = int(text) if self.whole else float(text)
        except ValueError:
            noun = "a whole number" if self.whole else "a number"
            raise OptionError(f"expected {noun}, got {text!r}") from None
        return self.check(value)

    def bad_values(self) -> tuple[Any, ...]:
        bad: list[Any] = []
        if self.minimum is not None:
            bad.append(self.minimum if self.above else self.minimum - 1)
        if self.maximum is not None:
            bad.append(self.maximum + 1)
        return tuple(bad)


@dataclass(frozen=True)
class Switch(Kind):
    """On or off. On the command line a flag turns it on, or off when the option's default is
    on (``--no-drop``); an optional switch (``None``: decided by the source) gets both."""

    def _check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise OptionError(f"expected true or false, got {value!r}")
        return value

    def bad_values(self) -> tuple[Any, ...]:
        return ("yes",)


@dataclass(frozen=True)
class File(Kind):
    """A path. ``exists``: a readable file that is there now (something to read);
    ``suffixes``: the endings allowed, with ``suffix_hint`` saying what they are."""

    exists: bool = False
    suffixes: tuple[str, ...] = ()
    suffix_hint: str = ""

    def _check(self, value: Any) -> Path:
        if not isinstance(value, str | os.PathLike) or not str(value).strip():
            raise OptionError(f"expected a file path, got {value!r}")
        path = Path(value).expanduser()
        if self.suffixes and path.suffix.lower() not in self.suffixes:
            raise OptionError(f"{path.name} is not {self.suffix_hint}; write "
                              f"{', '.join(self.suffixes[:-1])} or {self.suffixes[-1]}")
        if self.exists:
            if not path.is_file():
                state = "is not a file" if path.exists() else "does not exist"
                raise OptionError(f"{path} {state}; give a file that is there")
            if not os.access(path, os.R_OK):
                raise OptionError(f"{path} is not readable (permission denied)")
        return path

    def metavar(self) -> str:
        return "FILE"

    def bad_values(self) -> tuple[Any, ...]:
        if self.suffixes:
            return ("clip.avi",)
        return ("/nonexistent/detstream-missing.yaml",) if self.exists else ()


@dataclass(frozen=True)
class Names(Kind):
    """Class names or ids to keep; an empty list is ``None`` (every class)."""

    def _check(self, value: Any) -> tuple[str, ...] | None:
        items = [value] if isinstance(value, str | int) else value
        if isinstance(items, bool) or not isinstance(items, Sequence) or not all(
                isinstance(v, str | int) and not isinstance(v, bool) and str(v).strip()
                for v in items):
            raise OptionError(f"expected class names or ids, got {value!r}")
        return tuple(str(v).strip() for v in items) or None

    def parse(self, text: str) -> str:
        """One word of ``--classes person car`` (the words are checked together)."""
        return text.strip()

    def metavar(self) -> str:
        return "CLASS"

    def bad_values(self) -> tuple[Any, ...]:
        return ()  # a class a model lacks is refused when the model has opened


@dataclass(frozen=True)
class Polygon(Kind):
    """Three or more ``(x, y)`` corners around an area (pixels): ``'x,y x,y x,y'`` on the
    command line, ``[[x, y], ...]`` in YAML and Python."""

    def _check(self, value: Any) -> tuple[tuple[float, float], ...]:
        ok = isinstance(value, Sequence) and not isinstance(value, str) and all(
            isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2 and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in p)
            for p in value)
        if not ok:
            raise OptionError(f"expected a polygon, got {value!r}; give three or more x,y "
                              "corners, e.g. [[0, 0], [100, 0], [100, 80]]")
        if len(value) < 3:
            raise OptionError(f"expected a polygon of three or more x,y corners, got "
                              f"{len(value)}")
        corners = tuple((float(x), float(y)) for x, y in value)
        from detstream.stream.zones import Zone

        try:
            Zone(corners)
        except UserInputError as exc:
            raise OptionError(str(exc)) from None
        return corners

    def parse(self, text: str) -> tuple[tuple[float, float], ...]:
        corners = []
        for part in text.replace(";", " ").split():
            try:
                x, y = (float(v) for v in part.split(","))
            except ValueError:
                raise OptionError(f"{part!r} is not an x,y pair; write the corners like "
                                  "'0,0 640,0 640,360 0,360'") from None
            corners.append((x, y))
        return self.check(corners)

    def metavar(self) -> str:
        return "'X,Y X,Y X,Y ...'"

    def bad_values(self) -> tuple[Any, ...]:
        return (((0.0, 0.0), (10.0, 0.0)), ((0.0, 0.0), (10.0, 0.0), (20.0, 0.0)))


@dataclass(frozen=True)
class Url(Kind):
    """An ``http://`` or ``https://`` address with a host."""

    def _check(self, value: Any) -> str:
        from urllib.parse import urlparse

        text = value.strip() if isinstance(value, str) else ""
        parts = urlparse(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise OptionError(f"expected an http:// or https:// address, got {value!r}")
        return text

    def bad_values(self) -> tuple[Any, ...]:
        return ("ftp://example.com/hook", "localhost:8080")


@dataclass(frozen=True)
class MqttTopic(Kind):
    """An MQTT broker and topic: ``HOST[:PORT]/TOPIC``."""

    def _check(self, value: Any) -> str:
        from detstream.stream.sinks.alerts import parse_mqtt

        try:
            parse_mqtt(value if isinstance(value, str) else "")
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        return value.strip()

    def bad_values(self) -> tuple[Any, ...]:
        return ("127.0.0.1:1883", "broker:99999/events")


@dataclass(frozen=True)
class _RuleList(Kind):
    """Named rules read by :mod:`detstream.stream.analytics.specs`: ``read_one`` a word,
    ``read_all`` a word, a mapping or a list of them (none is ``None``)."""

    many = True
    read_one = ""
    read_all = ""

    def _read(self, reader: str, value: Any) -> Any:
        from detstream.stream.analytics import specs

        try:
            return getattr(specs, reader)(value)
        except ValueError as exc:
            raise OptionError(str(exc)) from None

    def _check(self, value: Any) -> tuple | None:
        return self._read(self.read_all, value) or None

    def parse(self, text: str) -> Any:
        return self._read(self.read_one, text)


@dataclass(frozen=True)
class Lines(_RuleList):
    """Named counting lines: one word each on the command line (``door:100,300,500,300``,
    the flag given once with several words or several times), a list of words or mappings
    in YAML and Python."""

    read_one, read_all = "line_spec", "line_specs"

    def metavar(self) -> str:
        return "NAME:X1,Y1,X2,Y2"

    def bad_values(self) -> tuple[Any, ...]:
        return ("door:1,2,3", "door:5,5,5,5")


@dataclass(frozen=True)
class Areas(_RuleList):
    """Named watched areas: one quoted word each on the command line (``'counter:100,100
    300,100 300,300'``), a list of words or mappings in YAML and Python."""

    read_one, read_all = "area_spec", "area_specs"

    def metavar(self) -> str:
        return "'NAME:X,Y X,Y X,Y ...'"

    def bad_values(self) -> tuple[Any, ...]:
        return ("counter:0,0 10,0", "counter:0,0 10,0 20,0")


# ------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Control:
    """How the page shows an option when its range is wider than a slider should be."""

    minimum: float
    maximum: float
    step: float


@dataclass(frozen=True)
class Option:
    """One declared option (see :func:`option`); ``name`` and ``default`` come from the
    field it is declared on, ``path`` from where that field sits (``("draw", "trails")``)."""

    kind: Kind
    help: str
    surfaces: frozenset[str]
    flag: str | None = None
    metavar: str | None = None
    control: Control | None = None
    name: str = ""
    path: tuple[str, ...] = ()
    default: Any = None

    @property
    def cli_flag(self) -> str:
        """The command-line flag: ``--conf``; a switch that is on by default is turned off
        by ``--no-NAME``."""
        if self.flag is not None:
            return self.flag
        stem = self.name.replace("_", "-")
        return f"--no-{stem}" if isinstance(self.kind, Switch) and self.default is True \
            else f"--{stem}"

    def check(self, value: Any, where: str | None = None) -> Any:
        """``value`` as the option holds it.

        Raises:
            UserInputError: ``where`` (default: the option's name) and what is wrong.
        """
        try:
            return self.kind.check(value)
        except OptionError as exc:
            raise UserInputError(f"{where or self.name}: {exc}") from None

    def argument_type(self) -> Callable[[str], Any]:
        """An argparse ``type=``: a bad word becomes argparse's one usage line (exit 2)."""

        def parse(text: str) -> Any:
            try:
                return self.kind.parse(text)
            except OptionError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        parse.__name__ = self.name  # argparse names the type in some messages
        return parse

    def help_text(self) -> str:
        """The help line, with the default added unless it says one."""
        shown = self.default
        if shown is None and isinstance(self.kind, Choice):
            shown = self.kind.none
        if "default" in self.help or shown is None or isinstance(self.kind, Switch):
            return self.help
        return f"{self.help} (default: {shown})"


def option(default: Any, kind: Kind, help: str, *surfaces: str, flag: str | None = None,
           metavar: str | None = None, control: Control | None = None,
           factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field declared as an option shown on ``surfaces`` (see :data:`SURFACES`;
    the Python API shows every option). ``factory`` instead of ``default`` for a nested
    settings record."""
    unknown = set(surfaces) - set(SURFACES)
    if unknown:
        raise ValueError(f"unknown surfaces {sorted(unknown)}")
    declared = Option(kind=kind, help=help, surfaces=frozenset(surfaces), flag=flag,
                      metavar=metavar, control=control)
    if factory is not None:
        return field(default_factory=factory, metadata={"option": declared})
    return field(default=default, metadata={"option": declared})


def _declared(cls: type, path: tuple[str, ...] = ()) -> Iterable[Option]:
    for item in fields(cls):
        declared = item.metadata.get("option")
        if declared is None:
            continue
        default = (item.default if item.default is not MISSING
                   else item.default_factory())  # type: ignore[misc]
        if is_dataclass(default):
            yield from _declared(type(default), (*path, item.name))
            continue
        yield replace(declared, name=item.name, path=(*path, item.name), default=default)


def options_of(cls: type, surface: str | None = None) -> dict[str, Option]:
    """The options declared on the dataclass ``cls`` and the records nested in it, by name
    (only those shown on ``surface`` when given), in declaration order."""
    found = {o.name: o for o in _declared(cls)}
    return {name: o for name, o in found.items() if surface is None or surface in o.surfaces}


def check_fields(record: Any) -> None:
    """Check and normalise every option field of the frozen dataclass ``record`` in place
    (its ``__post_init__`` calls this): a bad value raises one :class:`UserInputError`."""
    for item in fields(record):
        declared = item.metadata.get("option")
        if declared is None:
            continue
        value = getattr(record, item.name)
        if is_dataclass(value):  # a nested record checks its own fields
            continue
        try:
            checked = declared.kind.check(value)
        except OptionError as exc:
            raise UserInputError(f"{item.name}: {exc}") from None
        if checked is not value:
            object.__setattr__(record, item.name, checked)


# -------------------------------------------------------------------- the command line
def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                  surface: str | None = None, *, only: Sequence[str] | None = None,
                  skip: Sequence[str] = (), defaults: dict[str, Any] | None = None,
                  helps: dict[str, str] | None = None) -> None:
    """Add a flag for every option of ``cls`` shown on ``surface`` (or the options named in
    ``only``), but ``skip``; ``defaults`` and ``helps`` override an option's default or help
    on this command only (a command that needs another default says so beside its code)."""
    defaults, helps = defaults or {}, helps or {}
    chosen = options_of(cls, surface)
    if only is not None:
        chosen = {name: chosen[name] for name in only}
    for name, declared in chosen.items():
        if name in skip:
            continue
        if name in defaults:
            declared = replace(declared, default=defaults[name])
        text = helps.get(name, declared.help_text())
        kind = declared.kind
        if isinstance(kind, Switch):
            if kind.optional:  # --live / --no-live: either, or neither (the source decides)
                both = parser.add_mutually_exclusive_group()
                both.add_argument(f"--{name.replace('_', '-')}", dest=name,
                                  action="store_true", default=None, help=text)
                both.add_argument(f"--no-{name.replace('_', '-')}", dest=name,
                                  action="store_false",
                                  help=f"the opposite of --{name.replace('_', '-')}")
            else:
                action = "store_false" if declared.default is True else "store_true"
                parser.add_argument(declared.cli_flag, dest=name, action=action,
                                    default=declared.default, help=text)
            continue
        if getattr(kind, "many", False):  # --line a:... b:... or --line a:... --line b:...
            parser.add_argument(declared.cli_flag, dest=name, type=declared.argument_type(),
                                default=declared.default, nargs="+", action="extend",
                                metavar=declared.metavar or kind.metavar(), help=text)
            continue
        parser.add_argument(declared.cli_flag, dest=name, type=declared.argument_type(),
                            default=declared.default,
                            nargs="+" if isinstance(kind, Names) else None,
                            metavar=declared.metavar or kind.metavar(), help=text)


def values_from_arguments(args: argparse.Namespace, cls: type, surface: str) -> dict[str, Any]:
    """The keyword arguments of ``cls`` that the flags of ``surface`` in ``args`` give,
    nested records (``draw``) built from their own flags."""
    return _values(vars(args), cls, surface)


def _values(given: dict[str, Any], cls: type, surface: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in fields(cls):
        declared = item.metadata.get("option")
        if declared is None:
            continue
        if item.default is MISSING and is_dataclass(item.default_factory()):  # type: ignore[misc]
            nested_cls = type(item.default_factory())  # type: ignore[misc]
            nested = _values(given, nested_cls, surface)
            if nested:
                values[item.name] = nested_cls(**nested)
        elif surface in declared.surfaces and item.name in given:
            value = given[item.name]
            values[item.name] = tuple(value) if isinstance(value, list) else value
    return values


def value_of(record: Any, name: str) -> Any:
    """The option ``name`` of ``record``, looked up in a nested record where it lives
    (``trails`` is ``record.draw.trails``)."""
    value = record
    for part in options_of(type(record))[name].path:
        value = getattr(value, part)
    return value


def with_values(record: Any, **values: Any) -> Any:
    """``record`` with the options ``values`` replaced, nested ones in their own record;
    every new value is checked. An unknown name raises :class:`UserInputError`."""
    declared = options_of(type(record))
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise UserInputError(f"unknown option {unknown[0]!r}; options are "
                             f"{', '.join(declared)}")
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        path = declared[name].path
        if len(path) == 1:
            top[name] = value
        else:
            nested.setdefault(path[0], {})[path[1]] = value
    for part, inner in nested.items():
        top[part] = replace(getattr(record, part), **inner)
    return replace(record, **top)
