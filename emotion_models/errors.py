"""The project's expected failures: what a user can fix from one clear line (the `emotion` command shows
the message alone; any other exception is a bug and shows its traceback)."""

from __future__ import annotations


class EmotionError(Exception):
    """An expected failure: missing models or inputs, bad parameters, features that changed..."""


class MissingInput(EmotionError, FileNotFoundError):
    """A file or folder the command or stage needs is not there (named in the message)."""
