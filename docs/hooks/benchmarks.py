"""MkDocs hook: the site's "Current figures" page is the repository's BENCHMARKS.md.

BENCHMARKS.md sits at the repository root (outside ``docs_dir``) and links into ``docs/``. The
page's text is taken from it at build time, its ``docs/...`` links rewritten to be relative to
the page, so the table of current figures is written once and the site shows the same one. In
the repository, ``docs/benchmarks/index.md`` only points to BENCHMARKS.md, so links to it work
when the files are read on their own too.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

#: The page whose text this hook writes (in the repository it points to BENCHMARKS.md).
PAGE = "benchmarks/index.md"
SOURCE = "BENCHMARKS.md"

_DOCS_LINK = re.compile(r"\]\(docs/")


def site_markdown(text: str) -> str:
    """BENCHMARKS.md with its links into ``docs/`` made relative to ``benchmarks/index.md``."""
    return _DOCS_LINK.sub("](../", text)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """The page's text is BENCHMARKS.md's (docs/benchmarks/index.md only points there)."""
    if page.file.src_uri != PAGE:
        return markdown
    root = Path(config.config_file_path).parent
    return site_markdown((root / SOURCE).read_text(encoding="utf-8"))
