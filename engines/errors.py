"""Errors that speak to the user.

Library code raises these with a sentence that names the problem and the fix; the command
line prints the sentence on one line and exits with code 2, never a traceback.
"""

from __future__ import annotations


class DetstreamError(Exception):
    """Base class of every error detstream raises on purpose."""


class UserInputError(DetstreamError, ValueError):
    """The user gave a value, file or path that cannot be used (bad flag, missing file, ...)."""
