"""Where detstream keeps generated files: exported ONNX models and TensorRT engines.

``$DETSTREAM_CACHE`` when set, otherwise ``~/.cache/detstream``.
"""

from __future__ import annotations

import hashlib
import os
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
