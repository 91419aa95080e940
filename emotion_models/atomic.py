"""Writes that never leave a half-written file: write to a temporary sibling, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl


def current_umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status); elsewhere set and
    restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The file gets the permissions a plain ``open`` would give (0666 less the umask), not
    ``mkstemp``'s owner-only 0600: outputs on a shared filesystem stay readable by the group."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(handle, 0o666 & ~current_umask())
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return _write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | os.PathLike, payload: object) -> Path:
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(path: str | os.PathLike, frame: pl.DataFrame, row_group_size: int | None = None) -> Path:
    return _write(path, lambda tmp: frame.write_parquet(tmp, row_group_size=row_group_size))


def write_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    def save(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.save(handle, array)

    return _write(path, save)
