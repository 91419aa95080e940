"""Composed audio-visual clips for CI: a CK+ face as the picture, a RAVDESS clip as the sound.

The six shared CREMA-D clips cannot teach the video model anything, so a CI run may add clips
made with ffmpeg from other real data of the same emotion. They are marked ``composed`` in the
manifest (dataset "composed"), take the RAVDESS actor as speaker (so they follow that actor's
split and never leak audio test speakers into training), and are never part of reported accuracy.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import polars as pl

from emotion_models.data.manifest import MANIFEST_SCHEMA


class ComposeError(RuntimeError):
    """ffmpeg is missing or failed."""


def compose_clip(face_image: str, audio: str, out: Path) -> Path:
    """An mp4 (H.264 256x256, AAC) showing ``face_image`` for the length of ``audio``."""
    if shutil.which("ffmpeg") is None:
        raise ComposeError("ffmpeg not found: install it (scripts/install.sh does) to compose clips")
    tmp = out.with_name(f".{out.stem}.tmp.mp4")
    command = ["ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-framerate", "25", "-i", face_image, "-i", audio,
               "-vf", "scale=256:256:flags=bicubic,format=yuv420p", "-c:v", "libx264", "-tune", "stillimage",
               "-c:a", "aac", "-b:a", "64k", "-shortest", str(tmp)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ComposeError(f"ffmpeg failed composing {out.name}: {result.stderr.strip()[-300:]}")
    tmp.replace(out)
    return out


def compose_clips(manifest: pl.DataFrame, count: int, out_dir: Path, seed: int) -> pl.DataFrame:
    """Up to ``count`` composed clips (manifest rows, ``composed`` true), balanced over the shared labels."""
    out_dir.mkdir(parents=True, exist_ok=True)
    faces = manifest.filter(pl.col("modality") == "face")
    voices = manifest.filter((pl.col("dataset") == "ravdess_audio"))
    rng = random.Random(seed)
    labels = sorted(set(faces["label"].to_list()) & set(voices["label"].to_list()))
    rows = []
    for index in range(count if labels else 0):
        label = labels[index % len(labels)]
        voice = rng.choice(voices.filter(pl.col("label") == label).to_dicts())
        same_split = faces.filter((pl.col("label") == label) & (pl.col("split") == voice["split"]))
        face = rng.choice((same_split if same_split.height else faces.filter(pl.col("label") == label)).to_dicts())
        name = f"{Path(voice['path']).stem}__{Path(face['path']).stem}.mp4"
        path = out_dir / name
        if not path.exists():
            compose_clip(face["path"], voice["path"], path)
        rows.append({**voice, "clip_id": f"composed:{name}", "dataset": "composed", "path": str(path.resolve()),
                     "modality": "video", "composed": True})
    return pl.DataFrame(rows, schema=MANIFEST_SCHEMA).unique("clip_id", keep="first", maintain_order=True)
