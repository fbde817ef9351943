"""Shared fixtures: paths to the read-only shared data, and a helper to run the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_path(relative: str) -> Path:
    """A path inside ``../shared/data``; skips the test with a reason when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (tests read it from ../shared/data)")
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``detstream ARGS`` in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "detstream", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
