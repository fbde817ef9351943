"""Where detstream keeps generated files: exported ONNX models and TensorRT engines.

``$DETSTREAM_CACHE`` when set, otherwise ``~/.cache/detstream``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """The cache folder (not created here)."""
    override = os.environ.get("DETSTREAM_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "detstream"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A fresh temporary file beside ``path`` to write; renamed onto ``path`` when the block
    ends without error, removed when it fails.

    Every writer gets its own temporary name (two processes exporting or building the same
    cache entry no longer write into one ``.tmp`` file), and readers see either the old file or
    the whole new one, never a part.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock named after the cache entry ``path`` (``path.lock`` beside it)
    for the block.

    Processes making the same entry (fleet workers starting together, on one machine or
    sharing ``$DETSTREAM_CACHE`` over NFSv4) take turns: the one that waited finds the entry
    made and uses it, so each ONNX export and TensorRT engine is made once per key. Callers
    check for the entry again inside the block.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
