"""Names in the output folder and what is already in it, without loading any model.

``OUT/videos/<key>.parquet`` and ``OUT/windows/<key>.parquet`` are keyed by content hash + model
version (:func:`output_key`), ``OUT/rejects/<key>.parquet`` by path, content hash and model version
(:func:`reject_key`). :func:`plan_batch` tells from two directory listings which files of a scan
this model version has already scored or rejected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from emotion_models import atomic
from emotion_models.contract import OUTPUT_FOLDERS, PATH_SCHEMA, PATHS_FILE
from emotion_models.errors import EmotionError
from emotion_models.files import display_path
from emotion_models.scoring.fingerprints import Scan


def output_key(digest: str, version: str) -> str:
    return f"{digest[:32]}-{version}"


def reject_key(path: str | os.PathLike, digest: str | None, version: str) -> str:
    identity = hashlib.sha256(os.fsencode(path) + b"\0" + (digest or "").encode()).hexdigest()[:32]
    return f"{identity}-{version}"


def _stems(folder: Path) -> set[str]:
    try:
        return {name[:-8] for name in os.listdir(folder) if name.endswith(".parquet")}
    except FileNotFoundError:
        return set()


@dataclass
class BatchPlan:
    """What one scan leaves to score: (path, content hash or None when unreadable) per file."""

    todo: list[tuple[str, str | None]] = field(default_factory=list)
    done: int = 0  # already scored or rejected by this model version


def plan_batch(scan: Scan, out: Path, version: str) -> BatchPlan:
    """Split a scan into files this model version has finished and files a task must see."""
    scored, rejected = _stems(out / "videos"), _stems(out / "rejects")
    plan = BatchPlan()
    for fingerprint in scan.files:
        digest = scan.digests[fingerprint.path]
        finished = (digest is not None and output_key(digest, version) in scored
                    or reject_key(fingerprint.path, digest, version) in rejected)
        if finished:
            plan.done += 1
        else:
            plan.todo.append((fingerprint.path, digest))
    return plan


class OutputNotWritable(EmotionError, OSError):
    """The output folder cannot be written (a systemic failure)."""


def check_writable(out: Path) -> None:
    """Raise OutputNotWritable with a clear message when ``out`` cannot be written (a systemic failure)."""
    try:
        for sub in OUTPUT_FOLDERS:
            (out / sub).mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise OutputNotWritable(f"{display_path(out)}: output folder is not writable "
                                f"({exc.strerror or exc})") from exc


def record_paths(out: Path, results: list[dict], seen: dt.datetime) -> pl.DataFrame:
    """Add this batch's paths to ``out/paths/paths.parquet`` (one row per path and content; a
    path seen before keeps its first_seen, every path seen now gets last_seen = ``seen``)."""
    target = out / PATHS_FILE
    now = pl.DataFrame([{"path": r["path"], "content_hash": r.get("content_hash"), "first_seen": seen,
                         "last_seen": seen} for r in results], schema=PATH_SCHEMA).unique(["path", "content_hash"])
    before = pl.read_parquet(target) if target.is_file() else pl.DataFrame(schema=PATH_SCHEMA)
    merged = (pl.concat([before, now]).group_by(["path", "content_hash"], maintain_order=True)
              .agg(pl.col("first_seen").min(), pl.col("last_seen").max()).sort("path", "content_hash"))
    atomic.write_parquet(target, merged)
    return merged
