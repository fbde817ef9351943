"""Commands that other installed packages add to ``detstream`` (the Gradio demo among them),
found through Python entry points so that ``stream`` never imports them by name.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."detstream.commands"]
    demo = "demo.command:register"          # register(subparsers) adds a verb

    [project.entry-points."detstream.bench"]
    demo = "demo.bench:register"            # register(jobs) adds a `detstream bench` job
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points


def add_plugins(group: str, commands: argparse._SubParsersAction) -> None:
    """Let every entry point of ``group`` register its subcommands on ``commands``."""
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        try:
            register = point.load()
        except Exception as exc:  # a broken extra must not take the other commands down
            print(f"detstream: note: the {point.name!r} command is unavailable ({exc})",
                  file=sys.stderr)
            continue
        register(commands)
