"""Graceful stop on Ctrl-C (SIGINT) and SIGTERM: finish the current frame, then finalise."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """Within the block, SIGINT and SIGTERM set the yielded event instead of killing the process.

    Long jobs check the event between frames, stop, and finalise their outputs. A second signal
    falls back to raising :class:`KeyboardInterrupt` at once. Outside the main thread, where
    handlers cannot be installed, the event simply never fires.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` as Ctrl-C does.

    A service manager's stop (SIGTERM) then ends any command the way Ctrl-C would: whatever
    is open is closed on the way out and the exit code is 130, in every phase of a command
    (loading a model, opening a source), not only where :func:`graceful_stop` is in force.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
