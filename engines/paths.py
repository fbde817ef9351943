"""Small helpers for the files and folders users name."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from detstream.engines.errors import UserInputError


def writable_dir(path: str | Path) -> Path:
    """Create ``path`` (with parents) if needed and make sure files can be written in it.

    Raises:
        UserInputError: the folder cannot be created or written, with the reason and the fix.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".detstream-write-test-"):
            pass
    except FileExistsError:
        raise UserInputError(
            f"output folder {path} is an existing file; choose a folder path") from None
    except NotADirectoryError:
        raise UserInputError(
            f"cannot create output folder {path}: a part of its path is a file; "
            "choose a folder path"
        ) from None
    except PermissionError:
        raise UserInputError(
            f"output folder {path} is not writable (permission denied); choose a writable folder"
        ) from None
    except OSError as exc:
        raise UserInputError(
            f"cannot write to output folder {path}: {exc.strerror or exc}; "
            "choose a writable folder"
        ) from None
    return path


def check_writable_parent(path: str | Path) -> None:
    """Make sure ``path`` can be written later, creating nothing: the nearest folder above it
    that exists is a folder (not a file) and takes new files.

    Raises:
        UserInputError: a part of the path is a file, or the folder cannot be written.
    """
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserInputError(f"cannot write {path}: {folder} is a file, not a folder; "
                             "choose a path inside a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".detstream-write-test-"):
            pass
    except OSError as exc:
        raise UserInputError(f"cannot write {path}: {folder} does not take new files "
                             f"({exc.strerror or exc}); choose a writable folder") from None


def existing_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` if it is a readable file, else raise a :class:`UserInputError`."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UserInputError(f"{what} {path} is not a file")
    if not os.access(path, os.R_OK):
        raise UserInputError(f"{what} {path} is not readable (permission denied)")
    return path
