"""Reading scored folders (OUT/videos, OUT/windows, OUT/rejects) back as tables for people.

Folders scored by older code lack some columns (``fused_*``, ``mean_probability_*``,
``windows_no_person``, ``fusion``): they read with those columns null, and the per-window estimate
falls back to the combined model's ``video_*`` probabilities where ``fused_*`` is absent. Tables are
read lazily with ``polars.scan_parquet`` (one glob per folder), so folders of 10k videos stay quick.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl

from emotion_models.labels import CLASS_NAMES
from emotion_models.scoring.score import SLUGS, output_key

VIEW_TITLES = {"fused": "fused estimate", "video": "combined model", "audio": "audio model", "face": "face model"}
EMOTION_OF_SLUG = dict(zip(SLUGS, CLASS_NAMES))
NO_EMOTION = "no person"  # shown where dominant_emotion is null
VIDEO_COLUMNS = {
    "path": pl.Utf8, "content_hash": pl.Utf8, "model_version": pl.Utf8, "duration": pl.Float64,
    "windows": pl.Int64, "dominant_emotion": pl.Utf8, "mean_confidence": pl.Float64,
    "windows_no_face": pl.Int64, "windows_no_audio": pl.Int64, "windows_no_speech": pl.Int64,
    "windows_no_person": pl.Int64, "fusion": pl.Utf8, "scored_at": pl.Utf8,
    **{f"share_{s}": pl.Float64 for s in SLUGS}, **{f"mean_probability_{s}": pl.Float64 for s in SLUGS},
}
REJECT_COLUMNS = {"path": pl.Utf8, "content_hash": pl.Utf8, "model_version": pl.Utf8, "reason": pl.Utf8}


def table_files(folder: Path, table: str) -> list[Path]:
    """The Parquet files of one output table (``videos``, ``windows``, ``rejects``, ``paths``)."""
    directory = folder / table
    if not directory.is_dir():
        return []
    return sorted(Path(entry.path) for entry in os.scandir(directory)
                  if entry.name.endswith(".parquet") and entry.is_file())


def folder_signature(folder: Path) -> tuple:
    """Changes whenever a file is added to or replaced in the folder's tables (a cache key)."""
    signature = []
    for table in ("videos", "rejects"):
        directory = folder / table
        if directory.is_dir():
            stamps = [entry.stat().st_mtime_ns for entry in os.scandir(directory) if entry.name.endswith(".parquet")]
            signature.append((table, len(stamps), max(stamps, default=0)))
    return tuple(signature)


CAST = pl.ScanCastOptions(integer_cast=["upcast", "allow-float"], float_cast="upcast")


def _scan(files: list[Path], columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """Every file as one table of the contract's ``columns``: missing ones null, all-null (Null-typed) or
    narrower ones cast to the contract's type."""
    if not files:
        return pl.DataFrame(schema=columns)
    try:
        return pl.scan_parquet(files, schema=columns, missing_columns="insert", extra_columns="ignore",
                               cast_options=CAST).collect()
    except (pl.exceptions.SchemaError, pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
        return frame.select([pl.col(name).cast(dtype, strict=False) if name in frame.columns
                             else pl.lit(None, dtype).alias(name) for name, dtype in columns.items()])


def load_videos(folders: list[Path]) -> pl.DataFrame:
    """One row per scored video of every folder, with ``folder``, ``emotion`` (dominant emotion or
    "no person"), ``scored`` (a datetime) and every contract column (null where the folder lacks it)."""
    frames = []
    for folder in folders:
        frame = _scan(table_files(folder, "videos"), VIDEO_COLUMNS)
        frames.append(frame.with_columns(pl.lit(str(folder)).alias("folder")))
    videos = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema={**VIDEO_COLUMNS,
                                                                                         "folder": pl.Utf8})
    return videos.with_columns(
        pl.col("dominant_emotion").fill_null(NO_EMOTION).alias("emotion"),
        pl.col("scored_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", strict=False).dt.replace_time_zone(None)
        .alias("scored"),
    ).sort("scored", descending=True, nulls_last=True)


def load_rejects(folders: list[Path]) -> pl.DataFrame:
    """Every file of the folders' rejects tables, with its reason and ``folder``."""
    frames = [_scan(table_files(folder, "rejects"), REJECT_COLUMNS).with_columns(pl.lit(str(folder)).alias("folder"))
              for folder in folders]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema={**REJECT_COLUMNS,
                                                                                          "folder": pl.Utf8})


def filter_videos(videos: pl.DataFrame, emotions: list[str] | None = None, folders: list[str] | None = None,
                  dates: tuple[dt.date, dt.date] | None = None, text: str = "") -> pl.DataFrame:
    """The videos with one of ``emotions`` (or "no person"), from one of ``folders``, scored on a day
    within ``dates`` (inclusive) and whose path contains ``text``; None or empty means no filter."""
    if emotions:
        videos = videos.filter(pl.col("emotion").is_in(emotions))
    if folders:
        videos = videos.filter(pl.col("folder").is_in(folders))
    if dates:
        videos = videos.filter(pl.col("scored").dt.date().is_between(dates[0], dates[1]))
    if text:
        videos = videos.filter(pl.col("path").str.contains(text, literal=True))
    return videos


def load_windows(folder: Path, content_hash: str, model_version: str) -> pl.DataFrame:
    """The window rows of one scored video (its file is named by content hash and model version)."""
    path = folder / "windows" / f"{output_key(content_hash, model_version)}.parquet"
    if path.is_file():
        return pl.read_parquet(path).sort("start")
    files = table_files(folder, "windows")
    if not files:
        return pl.DataFrame()
    return (pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
            .filter((pl.col("content_hash") == content_hash) & (pl.col("model_version") == model_version))
            .collect().sort("start"))


def views_of(windows: pl.DataFrame) -> list[str]:
    """The views with probabilities in these window rows, the estimate first (fused, else combined model)."""
    return [view for view in VIEW_TITLES if f"{view}_{SLUGS[0]}" in windows.columns]


def estimate_view(windows: pl.DataFrame) -> str:
    """Which columns give a window's estimate: ``fused_*`` where present, else the combined model's ``video_*``."""
    return "fused" if f"fused_{SLUGS[0]}" in windows.columns else "video"


def timeline(windows: pl.DataFrame) -> pl.DataFrame:
    """Long form for a chart: one row per window, view and emotion (start, end, view, emotion, probability);
    windows where a view is missing have no rows for it."""
    parts = []
    for view in views_of(windows):
        for slug in SLUGS:
            parts.append(windows.select(
                "window", "start", "end", pl.lit(VIEW_TITLES[view]).alias("view"),
                pl.lit(EMOTION_OF_SLUG[slug]).alias("emotion"),
                pl.col(f"{view}_{slug}").cast(pl.Float64).alias("probability")))
    if not parts:
        return pl.DataFrame(schema={"window": pl.Int64, "start": pl.Float64, "end": pl.Float64, "view": pl.Utf8,
                                    "emotion": pl.Utf8, "probability": pl.Float64})
    return pl.concat(parts).drop_nulls("probability")


def window_summary(windows: pl.DataFrame) -> pl.DataFrame:
    """One row per window for people: times, what was present, each view's top emotion and its probability,
    and the transcript."""
    columns = [pl.col("window"), pl.col("start"), pl.col("end")]
    for view in views_of(windows):
        probabilities = [pl.col(f"{view}_{slug}").cast(pl.Float64) for slug in SLUGS]
        best = pl.max_horizontal(probabilities)
        winner = pl.when(best.is_null()).then(None)
        for slug, probability in zip(SLUGS, probabilities):
            winner = winner.when(probability == best).then(pl.lit(EMOTION_OF_SLUG[slug]))
        columns += [winner.alias(VIEW_TITLES[view]), best.alias(f"{VIEW_TITLES[view]} p")]
    for flag in ("has_face", "has_speech"):
        if flag in windows.columns:
            columns.append(pl.col(flag).alias(flag.removeprefix("has_")))
    if "transcript" in windows.columns:
        columns.append(pl.col("transcript"))
    return windows.select(columns)


def mean_probabilities(video: dict) -> dict[str, float] | None:
    """The video's mean probability per emotion (``mean_probability_*``), or None when not recorded."""
    values = {EMOTION_OF_SLUG[s]: video.get(f"mean_probability_{s}") for s in SLUGS}
    return None if any(v is None for v in values.values()) else values


def shares(video: dict) -> dict[str, float]:
    """The video's share of time per emotion."""
    return {EMOTION_OF_SLUG[s]: video.get(f"share_{s}") or 0.0 for s in SLUGS}
