"""Progress bars that suit where they are written: a live bar on a terminal, a plain line every
few seconds in a log file.

tqdm redraws its bar many times a second with carriage returns. On a terminal that is one line
updating in place; redirected to a file it is hundreds of updates a second run together on one
line. :func:`progress_bar` keeps tqdm (its rates, ETA and formatting) and, off a terminal, turns
each redraw into its own line at most every ``LOG_INTERVAL`` seconds.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import tqdm

#: Seconds between progress lines when the output is not a terminal.
LOG_INTERVAL = 5.0


class _Lines:
    """A file wrapper that writes each tqdm redraw as one line (no carriage returns)."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.file.write(line + "\n")

    def flush(self) -> None:
        self.file.flush()


def is_terminal(file: IO[str]) -> bool:
    isatty = getattr(file, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed file
        return False


def progress_bar(iterable: Any = None, *, file: IO[str] | None = None, disable: bool = False,
                 **options: Any) -> tqdm:
    """A tqdm bar on a terminal; a line every :data:`LOG_INTERVAL` seconds anywhere else.

    Args:
        iterable, options: as for :class:`tqdm.tqdm` (``total``, ``desc``, ``unit`` ...).
        file: where it goes (default: standard error).
        disable: no progress at all.
    """
    file = file if file is not None else sys.stderr
    if is_terminal(file):
        options.setdefault("dynamic_ncols", True)
        return tqdm(iterable, file=file, disable=disable, **options)
    options.pop("dynamic_ncols", None)
    options["mininterval"] = max(options.get("mininterval", 0.0), LOG_INTERVAL)
    return tqdm(iterable, file=_Lines(file), disable=disable, ncols=100, **options)
