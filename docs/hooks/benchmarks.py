"""MkDocs hook: the site's "Current figures" page is the repository's BENCHMARKS.md.

BENCHMARKS.md sits at the repository root (outside ``docs_dir``) and links into ``docs/``. The
page is made from it at build time, its ``docs/...`` links rewritten to be relative to the page,
so the table of current figures is written once and the site shows the same one.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

#: Where the page lands in the site (listed in mkdocs.yml's nav).
PAGE = "benchmarks/index.md"
SOURCE = "BENCHMARKS.md"

_DOCS_LINK = re.compile(r"\]\(docs/")


def site_markdown(text: str) -> str:
    """BENCHMARKS.md with its links into ``docs/`` made relative to ``benchmarks/index.md``."""
    return _DOCS_LINK.sub("](../", text)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    text = (root / SOURCE).read_text(encoding="utf-8")
    files.append(File.generated(config, PAGE, content=site_markdown(text)))
    return files
