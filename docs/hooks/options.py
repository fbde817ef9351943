"""MkDocs hook: the run options page, written from their one declaration at build time.

Every option of a run (``RunConfig``'s fields and the drawing settings nested in it) with its
flag, what it takes, its default, where it is shown (``detstream run``, the demo's start flags,
the page's settings, the fleet YAML, the pipeline benchmarks) and its help, from
``detstream.stream.run_config``: the page cannot drift from the code. In the repository
``docs/reference/options.md`` only says how to see it.
"""

from __future__ import annotations

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

#: The page whose text this hook writes.
PAGE = "reference/options.md"

INTRO = """# Run options

Each option of a run is declared once, in `stream/run_config.py` (the drawing ones in
`stream/draw.py`), and every surface derives from that declaration: `detstream run`'s flags,
the flags `detstream demo` starts the page with, the page's settings panel, the keys of a
stream in the [fleet's cameras YAML](../guide/fleet.md), the pipeline benchmarks' flags and, in
Python, `RunConfig(...)` and `detstream.track(**options)`. A bad value is refused in the same
words everywhere; only the option's name differs (`--conf`, `streams[0] (gate).conf`, `conf`).
This page is written from the declarations each time the site is built.

| option | flag | takes | default | shown on | what it does |
|---|---|---|---|---|---|"""


def _takes(option) -> str:
    """What values the option takes, in words."""
    from detstream.stream.options import Choice, File, Names, Number, Polygon, Switch, Text

    kind = option.kind
    if isinstance(kind, Choice):
        text = " / ".join(f"`{v}`" for v in kind.values)
    elif isinstance(kind, Number):
        text = kind.describe()
    elif isinstance(kind, Switch):
        text = "on or off"
    elif isinstance(kind, File):
        text = "a file to read" if kind.exists else (
            f"a {'/'.join(kind.suffixes)} file" if kind.suffixes else "a file to write")
    elif isinstance(kind, Names):
        text = "class names or ids"
    elif isinstance(kind, Polygon):
        text = "three or more x,y corners"
    elif isinstance(kind, Text):
        text = "text"
    else:
        text = type(kind).__name__
    return text + (" or none" if kind.optional and not isinstance(kind, Choice) else "")


def options_markdown() -> str:
    """The whole page: one table row per option, in declaration order."""
    from detstream.stream.run_config import RUN_OPTIONS

    rows = [INTRO]
    for option in RUN_OPTIONS.values():
        flag = f"`{option.cli_flag}`" if "run" in option.surfaces else ""
        default = option.default
        shown = "" if default is None else f"`{default}`"
        surfaces = ", ".join(sorted(option.surfaces)) or "Python only"
        text = option.help.replace("|", "\\|")
        rows.append(f"| `{'.'.join(option.path)}` | {flag} | {_takes(option)} | {shown} | "
                    f"{surfaces} | {text} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """The options page's text, written now (docs/reference/options.md only says so)."""
    if page.file.src_uri == PAGE:
        return options_markdown()
    return markdown
