"""File helpers: paths as text (atomic writes are in emotion_models.atomic)."""

from __future__ import annotations

import os


def display_path(path: str | os.PathLike) -> str:
    """``path`` as UTF-8 text, bytes that are not UTF-8 escaped (``b"bad\\xff"`` -> ``bad\\xff``):
    Linux allows any byte but ``/`` and NUL in a name; Parquet, JSON and Prefect want UTF-8."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
