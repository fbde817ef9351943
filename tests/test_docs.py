"""The documentation: the MkDocs site builds with ``--strict`` (a broken link or anchor, or a page
left out of the nav, fails it), its command reference is exactly what ``--help`` prints, and
README.md stays a short front door whose links all lead somewhere."""

from __future__ import annotations

import argparse
import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytest.importorskip("mkdocs", reason="mkdocs is not installed (it is in the dev extra: "
                    "pip install -e '.[dev]')")
pytest.importorskip("material", reason="mkdocs-material is not installed (it is in the dev "
                    "extra: pip install -e '.[dev]')")

#: The width docs/hooks/commands.py wraps the help at; the parser is formatted at the same here.
COLUMNS = 100
README_MAX_LINES = 300


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "COLUMNS": "40"}  # the hook sets its own
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return out


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            unique = {id(sub): sub for sub in action.choices.values()}
            for sub in unique.values():
                yield from _parsers(sub)


def _help_texts(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from detstream.stream.cli import build_parser

    monkeypatch.setenv("COLUMNS", str(COLUMNS))
    return {sub.prog: sub.format_help() for sub in _parsers(build_parser())}


def _code_after(page: str, anchor: str) -> str:
    """The text of the first code block after the heading ``anchor``, as a reader sees it."""
    at = page.find(f'id="{anchor}"')
    assert at >= 0, f"no heading {anchor!r} in the command reference"
    block = re.search(r"<pre[^>]*>(.*?)</pre>", page[at:], re.S)
    assert block is not None, f"no code block after {anchor!r}"
    return html.unescape(re.sub(r"<[^>]+>", "", block.group(1)))


def test_the_site_builds_with_strict(site: Path):
    for page in ("index.html", "reference/commands/index.html", "benchmarks/index.html",
                 "ARCHITECTURE/index.html", "guide/getting-started/index.html"):
        assert (site / page).is_file(), page


def test_the_command_reference_is_every_command_s_help(site: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    expected = _help_texts(monkeypatch)
    assert {"detstream run", "detstream bench engine", "detstream fleet run",
            "detstream demo"} <= set(expected)
    page = (site / "reference" / "commands" / "index.html").read_text(encoding="utf-8")
    for prog, text in expected.items():
        shown = _code_after(page, prog.replace(" ", "-"))
        assert shown.strip("\n") == text.strip("\n"), f"{prog}: the page differs from --help"
    headings = set(re.findall(r'<h2 id="(detstream[^"]*)"', page))
    assert headings == {prog.replace(" ", "-") for prog in expected}


def test_the_current_figures_page_is_benchmarks_md(site: Path):
    source = (REPO / "BENCHMARKS.md").read_text(encoding="utf-8")
    rows = [line for line in source.splitlines()
            if line.startswith("|") and not line.startswith("|---")]
    page = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert page.count("<tr>") == len(rows) > 10


def test_readme_is_a_short_front_door_with_working_links():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    quick = re.search(r"## Quick start\n\n```bash\n(.*?)```", text, re.S)
    assert quick is not None
    assert [line.split("#")[0].strip() for line in quick.group(1).splitlines()] == [
        "make run", "make test"]
    links = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'src="([^"]+)"', text)
    local = [link.split("#")[0] for link in links
             if not re.match(r"[a-z]+:", link) and not link.startswith("#")]
    assert local, "README.md links nowhere"
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
