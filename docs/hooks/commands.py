"""MkDocs hook: the command reference page, written from the ``detstream`` parser at build time.

Every command and subcommand gets a heading and its ``--help`` text exactly as argparse prints
it, so the page follows the argument declarations wherever they change and cannot drift from
them. The plugin commands (``detstream demo``, ``detstream bench demo``) arrive through their
entry points, as on the command line. Building the parser imports no torch or gradio (each
handler imports its heavy modules when it runs), so the hook stays fast.

In the repository ``docs/reference/commands.md`` only says how to see the page, so links to it
work when the files are read on their own too. ``tests/test_docs.py`` builds the site and
compares the page with the parser.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

#: The page whose text this hook writes (in the repository it only says so).
PAGE = "reference/commands.md"
#: The terminal width the help text is wrapped at, here and in the test.
COLUMNS = 100

INTRO = """# Command reference

Every `detstream` command and subcommand with its `--help` text, as argparse prints it
(wrapped at {columns} columns). This page is written from the command line's own argument
declarations each time the site is built, so it always matches the installed code. The guide
pages explain what the options are for: start from [Getting started](../guide/getting-started.md).

"""


def command_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser, then each of its subcommands' parsers, depth first in declaration order.

    An alias (two names for one parser) is listed once.
    """
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for sub in action.choices.values():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from command_parsers(sub)


@contextmanager
def terminal_width(columns: int) -> Iterator[None]:
    """argparse wraps help at ``$COLUMNS``: fix it while the help is formatted."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def help_texts(columns: int = COLUMNS) -> list[tuple[str, str]]:
    """``(prog, help text)`` of every command, as ``detstream ... --help`` prints them."""
    from detstream.stream.cli import build_parser

    with terminal_width(columns):
        return [(sub.prog, sub.format_help()) for sub in command_parsers(build_parser())]


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def reference_markdown(columns: int = COLUMNS) -> str:
    """The whole page: an index of the commands, then one section per command."""
    texts = help_texts(columns)
    lines = [INTRO.format(columns=columns)]
    for prog, _ in texts:
        depth = prog.count(" ")
        anchor = prog.replace(" ", "-")
        lines.append(f"{'    ' * depth}- [`{prog}`](#{anchor})")
    lines.append("")
    for prog, text in texts:
        fence = _fence(text)
        lines += [f"## {prog}", "", f"{fence}text", text.rstrip("\n"), fence, ""]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """The reference page's text, written now (docs/reference/commands.md only says so)."""
    if page.file.src_uri == PAGE:
        return reference_markdown()
    return markdown
