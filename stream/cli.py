"""The ``detstream`` command: one verb per job. Thin: it parses, then calls the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from detstream.engines import __version__
from detstream.engines.errors import DetstreamError
from detstream.stream.commands import (
    bench,
    build,
    doctor,
    eval_mot,
    export,
    fleet,
    models,
    run,
    synth,
    track,
    train,
    val,
)
from detstream.stream.commands.plugins import add_plugins
from detstream.stream.signals import terminate_as_interrupt

EXAMPLES = """examples:
  detstream doctor                                  check this machine
  detstream synth video runs/scene --frames 300     a synthetic video with ground truth
  detstream synth dataset runs/data --train 2000 --val 200
  detstream COMMAND --help                          options and examples of a command
"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the problem, then where to look for the fix."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="detstream",
        description="Real-time video object detection and tracking.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"detstream {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (doctor, synth, models, train, val, export, build, bench, track, eval_mot,
                   run, fleet):
        module.register(commands)
    add_plugins("detstream.commands", commands)
    # Every command knows its own name for error lines ("detstream synth video: error: ...").
    for sub in commands.choices.values():
        _set_prog(sub)
    return parser


def _set_prog(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(prog=parser.prog)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _set_prog(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for user mistakes)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "runs_pipeline", False):
        from detstream.stream.pipeline.threads import prefer_passive_openmp

        prefer_passive_openmp()  # before the handler imports torch
    try:
        with terminate_as_interrupt():
            return int(args.handler(args) or 0)
    except DetstreamError as exc:
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{args.prog}: interrupted; outputs written so far were finalised",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `detstream doctor | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
