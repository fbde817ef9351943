"""Every run option is declared once (detstream.stream.run_config) and every surface derives
from that declaration: this walks each option through each surface that shows it and checks
the same default and the same refusal, in the same words."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from detstream.demo.state import PAGE_OPTIONS, LiveSettings
from detstream.engines.errors import UserInputError
from detstream.stream.cli import build_parser
from detstream.stream.draw import DrawConfig
from detstream.stream.fleet.config import FLEET_OPTIONS, parse_fleet
from detstream.stream.options import (
    SURFACES,
    Control,
    Number,
    OptionError,
    Switch,
    value_of,
    values_from_arguments,
    with_values,
)
from detstream.stream.run_config import RUN_OPTIONS, RunConfig


def _subparser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


PARSER = build_parser()
#: The command each command-line surface is read from, and the arguments it requires.
COMMANDS = {"run": (("run",), []), "demo": (("demo",), []),
            "bench": (("bench", "pipeline"), ["--source", "clip.mp4"])}
CASES = [(name, bad) for name, declared in RUN_OPTIONS.items()
         for bad in declared.kind.bad_values()]


def _problem(name: str, bad) -> str:
    """What the option's kind says about ``bad``: every surface must say exactly this."""
    with pytest.raises(OptionError) as refused:
        RUN_OPTIONS[name].kind.check(bad)
    return str(refused.value)


def _as_text(value) -> str:
    """A value as a user types it on the command line."""
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return " ".join(f"{x:g},{y:g}" for x, y in value)
    return str(value)


def _flag(command: tuple[str, ...], name: str) -> argparse.Action | None:
    parser = _subparser(PARSER, *command)
    return next((a for a in parser._actions if a.dest == name), None)


def _fleet(tmp_path, **keys):
    stream = {"name": "a", "uri": "synthetic://?frames=1", "outputs": {"json": "a.jsonl"},
              **keys}
    return parse_fleet({"streams": [stream]}, tmp_path / "cams.yaml").streams[0]


def test_every_field_of_a_run_is_a_declared_option():
    declared = {o.path[0] for o in RUN_OPTIONS.values()}
    assert {f.name for f in fields(RunConfig)} == declared
    for name, option in RUN_OPTIONS.items():
        assert option.help and set(option.surfaces) <= set(SURFACES), name


@pytest.mark.parametrize("name", list(RUN_OPTIONS))
def test_each_surface_shows_the_declared_default(name, tmp_path):
    option = RUN_OPTIONS[name]
    assert value_of(RunConfig(), name) == option.default  # the Python API
    for surface, (command, required) in COMMANDS.items():
        action = _flag(command, name)
        if surface not in option.surfaces:
            assert action is None or name == "source", (surface, name)
            continue
        assert action is not None, f"{' '.join(command)} has no flag for {name}"
        args = _subparser(PARSER, *command).parse_args(required)
        assert getattr(args, name) == option.default, (surface, name)
    if "fleet" in option.surfaces:
        assert getattr(_fleet(tmp_path), name) == option.default
    else:
        assert name not in FLEET_OPTIONS
    if "page" in option.surfaces:
        assert getattr(LiveSettings(), name) == option.default
        if option.control is not None:  # a slider stays inside the option's range
            kind, control = option.kind, option.control
            assert isinstance(kind, Number) and isinstance(control, Control)
            assert kind.minimum <= control.minimum < control.maximum <= kind.maximum
            assert control.minimum <= option.default <= control.maximum
    else:
        assert name not in PAGE_OPTIONS


@pytest.mark.parametrize(("name", "bad"), CASES)
def test_each_surface_refuses_a_bad_value_in_the_same_words(name, bad, tmp_path, capsys):
    option = RUN_OPTIONS[name]
    problem = _problem(name, bad)
    with pytest.raises(UserInputError) as refused:  # the Python API
        with_values(RunConfig(), **{name: bad})
    assert str(refused.value) == f"{name}: {problem}"
    for surface, (command, required) in COMMANDS.items():
        if surface not in option.surfaces or isinstance(option.kind, Switch):
            continue  # a switch is a flag: it carries no value to refuse
        flag = _flag(command, name).option_strings[0]
        with pytest.raises(SystemExit) as exited:
            _subparser(PARSER, *command).parse_args([*required, flag, _as_text(bad)])
        assert exited.value.code == 2
        error = capsys.readouterr().err
        assert f"argument {flag}: {problem}" in error, (surface, error)
    if "fleet" in option.surfaces:
        with pytest.raises(UserInputError) as refused:
            _fleet(tmp_path, **{name: list(map(list, bad)) if isinstance(bad, tuple) else bad})
        assert str(refused.value).endswith(f"streams[0] (a).{name}: {problem}")
    if "page" in option.surfaces:
        with pytest.raises(UserInputError) as refused:
            LiveSettings.from_controls(RunConfig(), **{name: bad})
        assert str(refused.value) == f"{name}: {problem}"


def test_an_unknown_option_is_one_line_naming_the_known_ones():
    with pytest.raises(UserInputError, match="unknown option 'confidence'; options are .*conf"):
        RunConfig.from_options(confidence=0.3)


def test_the_page_controls_map_onto_the_options():
    settings = LiveSettings.from_controls(RunConfig(), imgsz=0, detect_every=3.0, trails=False,
                                          classes=[], tracker="none", conf=0.5)
    assert (settings.imgsz, settings.detect_every, settings.trails) == (None, 3, 0)
    assert settings.classes is None and settings.tracker is None and settings.conf == 0.5
    assert LiveSettings.from_controls(RunConfig(), trails=True).trails == \
        RUN_OPTIONS["trails"].default


def test_the_command_line_builds_the_same_config_as_the_api():
    args = _subparser(PARSER, "run").parse_args(
        ["--conf", "0.4", "--tracker", "none", "--classes", "person", "car", "--no-overlay",
         "--trails", "5", "--zone", "0,0 10,0 10,10", "--no-drop", "--live"])
    config = RunConfig(**values_from_arguments(args, RunConfig, "run"))
    assert config == RunConfig(conf=0.4, tracker="none", classes=("person", "car"), drop=False,
                               live=True, zone=((0, 0), (10, 0), (10, 10)),
                               draw=DrawConfig(overlay=False, trails=5))
    assert config.tracker is None


def test_the_options_page_of_the_docs_lists_every_option():
    pytest.importorskip("mkdocs", reason="the docs hooks need mkdocs (the dev extra)")
    import importlib.util
    from pathlib import Path

    hook = Path(__file__).parents[1] / "docs" / "hooks" / "options.py"
    spec = importlib.util.spec_from_file_location("options_hook", hook)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [line for line in module.options_markdown().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [".".join(o.path) for o in RUN_OPTIONS.values()]
    conf = next(row for row in rows if row.startswith("| `conf`"))
    assert "`--conf`" in conf and "a number from 0 to 1" in conf and "`0.25`" in conf
