"""Reading scored folders (OUT/videos, OUT/windows, OUT/rejects) back as tables for people.

Folders scored by older code lack some columns (``fused_*``, ``mean_probability_*``,
``windows_no_person``, ``fusion``): they read with those columns null, and the per-window estimate
falls back to the combined model's ``video_*`` probabilities where ``fused_*`` is absent. Tables are
read with ``polars.scan_parquet`` and incrementally (``TableReader``): a folder of 10k videos is read once,
then only the files a later scoring run adds.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import polars as pl

from emotion_models.contract import EMOTION_OF_SLUG, NO_EMOTION, VIDEO_SCHEMA, VIEW_TITLES
from emotion_models.labels import CLASS_NAMES, SLUGS
from emotion_models.scoring.outputs import output_key


def table_files(folder: Path, table: str) -> list[Path]:
    """The Parquet files of one output table (``videos``, ``windows``, ``rejects``, ``paths``)."""
    directory = folder / table
    if not directory.is_dir():
        return []
    return sorted(Path(entry.path) for entry in os.scandir(directory)
                  if entry.name.endswith(".parquet") and entry.is_file())


class TableReader:
    """One output table of one folder, read incrementally: output files are never changed once written
    (each is named by content hash and model version and written atomically), so a refresh reads only the
    files added since the last one and drops the rows of files removed. Thread-safe."""

    def __init__(self, folder: Path, table: str, columns: dict[str, pl.DataType]) -> None:
        self.folder, self.table, self.columns = folder, table, columns
        self._stamp: int | None = None
        self._rows = pl.DataFrame(schema={**columns, "file": pl.Utf8})
        self._lock = threading.Lock()

    def read(self) -> pl.DataFrame:
        """The table's rows now (``file`` names each row's file)."""
        directory = self.folder / self.table
        with self._lock:
            stamp = directory.stat().st_mtime_ns if directory.is_dir() else None
            if stamp != self._stamp:  # a file was added, replaced or removed: the directory changed
                files = {str(f) for f in table_files(self.folder, self.table)}
                known = set(self._rows["file"].unique().to_list())
                kept = self._rows.filter(pl.col("file").is_in(list(files & known)))
                added = _scan(sorted(Path(f) for f in files - known), self.columns, with_file=True)
                self._rows, self._stamp = pl.concat([kept, added]).rechunk(), stamp
            return self._rows


CAST = pl.ScanCastOptions(integer_cast=["upcast", "allow-float"], float_cast="upcast")


def _scan(files: list[Path], columns: dict[str, pl.DataType], with_file: bool = False) -> pl.DataFrame:
    """Every file as one table of the contract's ``columns``: missing ones null, all-null (Null-typed) or
    narrower ones cast to the contract's type; ``with_file`` adds each row's file path as ``file``."""
    schema = {**columns, "file": pl.Utf8} if with_file else columns
    if not files:
        return pl.DataFrame(schema=schema)
    try:
        return pl.scan_parquet(files, schema=columns, missing_columns="insert", extra_columns="ignore",
                               cast_options=CAST, include_file_paths="file" if with_file else None).collect()
    except (pl.exceptions.SchemaError, pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        frames = [pl.read_parquet(f).with_columns(pl.lit(str(f)).alias("file")) for f in files]
        frame = pl.concat(frames, how="diagonal_relaxed")
        return frame.select([pl.col(name).cast(dtype, strict=False) if name in frame.columns
                             else pl.lit(None, dtype).alias(name) for name, dtype in schema.items()])


def videos_table(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Video rows of several folders (each with ``folder``) as one table, with ``emotion`` (the dominant
    emotion, or "no person") and ``scored`` (a datetime), newest first."""
    videos = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema={**VIDEO_SCHEMA,
                                                                                         "folder": pl.Utf8})
    return videos.with_columns(
        pl.col("dominant_emotion").fill_null(NO_EMOTION).alias("emotion"),
        pl.col("scored_at").str.to_datetime("%Y-%m-%dT%H:%M:%S%z", strict=False).dt.replace_time_zone(None)
        .alias("scored"),
    ).sort("scored", descending=True, nulls_last=True)


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
    """One row per window for people: times, the transcript, each view's top emotion and its probability,
    and whether a face and speech were present."""
    columns = [pl.col("window"), pl.col("start"), pl.col("end")]
    if "transcript" in windows.columns:
        columns.append(pl.col("transcript"))
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
    return windows.select(columns)


def mean_probabilities(video: dict, windows: pl.DataFrame) -> dict[str, float] | None:
    """The video's mean probability per emotion: ``mean_probability_*`` where recorded, else the mean of the
    window estimates (windows without one left out); None when no window has an estimate."""
    recorded = {EMOTION_OF_SLUG[s]: video.get(f"mean_probability_{s}") for s in SLUGS}
    if all(v is not None for v in recorded.values()):
        return recorded
    if not windows.height:
        return None
    view = estimate_view(windows)
    means = windows.select(pl.col(f"{view}_{s}").cast(pl.Float64).mean() for s in SLUGS).row(0)
    return None if any(v is None for v in means) else dict(zip(CLASS_NAMES, means))
