"""Names in the output folder and what is already in it, without loading any model.

``OUT/videos/<key>.parquet`` and ``OUT/windows/<key>.parquet`` are keyed by content hash + model
version (:func:`output_key`), ``OUT/rejects/<key>.parquet`` by path, content hash and model version
(:func:`reject_key`). :func:`plan_batch` tells from two directory listings which files of a scan
this model version has already scored or rejected.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from emotion_models.scoring.fingerprints import Scan

SLUGS = ("sad_fear", "neutral", "happy", "angry", "surprise_disgust")  # class suffixes of the probability columns
OUTPUT_FOLDERS = ("windows", "videos", "rejects")


def output_key(digest: str, version: str) -> str:
    return f"{digest[:32]}-{version}"


def reject_key(path: str | os.PathLike, digest: str | None, version: str) -> str:
    identity = hashlib.sha256(f"{path}\0{digest}".encode()).hexdigest()[:32]
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


def check_writable(out: Path) -> None:
    """Raise OSError with a clear message when ``out`` cannot be written (a systemic failure)."""
    for sub in OUTPUT_FOLDERS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    probe = out / ".write-test"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"{out}: output folder is not writable ({exc.strerror})") from exc
