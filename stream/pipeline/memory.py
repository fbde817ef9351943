"""Giving freed memory back to the system during long runs (glibc).

A pipeline allocates and frees frame-sized buffers (decoded frames, letterboxed inputs, drawn
copies) in several threads for as long as it runs. glibc raises its mmap threshold after the
first large buffer is freed, so later frames come from the per-thread heaps, and what is freed
there stays with the process as free-but-resident pages: resident memory creeps up over hours
although nothing leaks. ``malloc_trim(0)`` returns those pages (whole free pages anywhere in
every heap, not only at the top), a few milliseconds of work; the runner calls it every
:data:`TRIM_INTERVAL` seconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

#: Seconds between trims in a running pipeline.
TRIM_INTERVAL = 30.0


def _load_trim():
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to do
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; True when glibc released some."""
    return bool(_TRIM(0)) if _TRIM is not None else False


class PeriodicTrim:
    """Call :func:`release_free_memory` at most every ``interval`` seconds."""

    def __init__(self, interval: float = TRIM_INTERVAL) -> None:
        self.interval = interval
        self._last = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            release_free_memory()
