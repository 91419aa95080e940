"""The output contract of scoring: what `emotion score` writes under OUT, and what the CLI, the app and
the reports read back. Every column has one fixed type in every file.

- ``windows/<key>.parquet`` (:data:`WINDOW_SCHEMA`): one row per window: path, content_hash,
  model_version, window, start, end, transcript, has_face/has_audio/has_speech, 5 class probabilities
  per view (:data:`WINDOW_VIEWS`: ``video_*`` the learned fusion, ``audio_*``, ``face_*``, ``text_*``
  the transcript's evidence, ``fused_*`` the estimate), ``fusion`` (late or learned) and
  ``audio_normalisation`` ("video": the audio view saw the video's speech windows standardised
  together, emotion_models.features.normalise; "none": the window alone); see
  emotion_models.scoring.fusion for when a view is missing. A window with neither a face nor speech
  has no person: all views null.
- ``videos/<key>.parquet`` (:data:`VIDEO_SCHEMA`): one row per video: path, content_hash,
  model_version, duration, windows, dominant_emotion (null when no window has a person), share_*
  (share of the person time each class is the most probable), mean_probability_*, mean_confidence,
  windows_no_face, windows_no_audio, windows_no_speech, windows_no_person, fusion, scored_at,
  audio_normalisation ("video" or "none", as its windows).
- ``rejects/<key>.parquet`` (:data:`REJECT_SCHEMA`): path, content_hash (when readable),
  model_version, reason.
- ``paths/paths.parquet`` (:data:`PATH_SCHEMA`): every input path (duplicates of one content and
  symlinks under their own path included) -> content_hash, first_seen, last_seen.
- ``report.html``: the batch's videos with an emotion timeline each.

``<key>`` is content hash + model version (emotion_models.scoring.outputs.output_key). The class
suffix of a probability column is the class's slug (:data:`emotion_models.labels.SLUGS`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from emotion_models.labels import CLASS_NAMES, SLUGS

OUTPUT_FOLDERS = ("windows", "videos", "rejects", "paths")
PATHS_FILE = Path("paths") / "paths.parquet"
WINDOW_VIEWS = ("video", "audio", "face", "text", "fused")  # probability column prefixes, in file order
# How people read each view (the app's and the CLI's column titles), the estimate first.
VIEW_TITLES = {"fused": "fused estimate", "video": "combined model", "audio": "audio model", "face": "face model",
               "text": "text"}
EMOTION_OF_SLUG = dict(zip(SLUGS, CLASS_NAMES))
NO_EMOTION = "no person"  # shown where dominant_emotion is null

_TEXT = {"path": pl.Utf8, "content_hash": pl.Utf8, "model_version": pl.Utf8}
WINDOW_SCHEMA = pl.Schema({
    **_TEXT, "window": pl.Int64, "start": pl.Float64, "end": pl.Float64, "transcript": pl.Utf8,
    "has_face": pl.Boolean, "has_audio": pl.Boolean, "has_speech": pl.Boolean,
    **{f"{view}_{slug}": pl.Float64 for view in WINDOW_VIEWS for slug in SLUGS}, "fusion": pl.Utf8,
    "audio_normalisation": pl.Utf8})
VIDEO_SCHEMA = pl.Schema({
    **_TEXT, "duration": pl.Float64, "windows": pl.Int64, "dominant_emotion": pl.Utf8,
    **{f"share_{slug}": pl.Float64 for slug in SLUGS}, **{f"mean_probability_{slug}": pl.Float64 for slug in SLUGS},
    "mean_confidence": pl.Float64, "windows_no_face": pl.Int64, "windows_no_audio": pl.Int64,
    "windows_no_speech": pl.Int64, "windows_no_person": pl.Int64, "fusion": pl.Utf8, "scored_at": pl.Utf8,
    "audio_normalisation": pl.Utf8})
REJECT_SCHEMA = pl.Schema({**_TEXT, "reason": pl.Utf8})
PATH_SCHEMA = pl.Schema({"path": pl.Utf8, "content_hash": pl.Utf8, "first_seen": pl.Datetime("us", "UTC"),
                         "last_seen": pl.Datetime("us", "UTC")})
