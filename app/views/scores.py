"""/scores: the videos of every scored folder, filtered; one video's timeline, windows and transcript; rejects."""

import io
from pathlib import Path

import polars as pl
import streamlit as st

from app import charts
from app.common import app_config, confidence_text, scored_tables, show_probabilities, show_timeline, show_windows
from emotion_models.contract import NO_EMOTION, VIDEO_SCHEMA
from emotion_models.labels import CLASS_NAMES
from emotion_models.scoring.results import filter_videos, load_windows, mean_probabilities

TABLE_COLUMNS = {"file": "video", "emotion": "dominant emotion", "mean_confidence": "confidence",
                 "duration": "duration (s)", "windows": "windows", "windows_no_face": "no face",
                 "windows_no_speech": "no speech", "windows_no_person": "no person", "scored": "scored at",
                 "folder": "folder"}

config = app_config()
st.title("Scored folders")
st.write("Every video `emotion score` has scored into the folders below: its dominant emotion, how sure the "
         "models were, and the windows where a face, speech or any person was missing.")
folders = config.scores
for folder in folders:
    if not (folder / "videos").is_dir():
        st.warning(f"`{folder}` holds no scores yet: run `emotion score DIR... --out {folder}`.")
videos, rejects = scored_tables(folders)
st.caption("Folders: " + ", ".join(f"`{f}`" for f in folders) + f" · {videos.height} videos, "
           f"{rejects.height} rejected files")

if videos.height:
    emotion_filter, folder_filter, date_filter, text_filter = st.columns([1.4, 1.4, 1, 1])
    present = [e for e in [*CLASS_NAMES, NO_EMOTION] if e in set(videos["emotion"].to_list())]
    emotions = emotion_filter.multiselect("Emotion", present, placeholder="all emotions")
    chosen_folders = folder_filter.multiselect("Folder", [str(f) for f in folders], placeholder="all folders")
    scored_days = videos["scored"].drop_nulls().dt.date()
    dates = None
    if scored_days.len():
        picked = date_filter.date_input("Scored between", (scored_days.min(), scored_days.max()))
        dates = tuple(picked) if isinstance(picked, (tuple, list)) and len(picked) == 2 else None
    text = text_filter.text_input("Path contains")
    shown = filter_videos(videos, emotions, chosen_folders, dates, text)

    counts, table_area = st.columns([1, 4])
    counts.altair_chart(charts.emotion_counts(shown), width="stretch")
    export = shown.select(*VIDEO_SCHEMA, "folder")
    parquet = io.BytesIO()
    export.write_parquet(parquet)
    counts.download_button("Download CSV", export.write_csv(), "videos.csv", "text/csv", icon=":material/download:")
    counts.download_button("Download Parquet", parquet.getvalue(), "videos.parquet", "application/octet-stream",
                           icon=":material/download:")
    table = (shown.with_columns(pl.col("path").str.split("/").list.last().alias("file"))
             .select(list(TABLE_COLUMNS)).rename(TABLE_COLUMNS))
    table_area.caption(f"{shown.height} of {videos.height} videos · click a row to open its timeline")
    selection = table_area.dataframe(
        table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
        key="videos", column_config={"confidence": st.column_config.NumberColumn(format="%.2f"),
                                     "duration (s)": st.column_config.NumberColumn(format="%.1f"),
                                     "scored at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    rows = selection.selection.rows if selection else []
    if shown.height:
        video = shown.row(rows[0] if rows and rows[0] < shown.height else 0, named=True)
        st.divider()
        st.subheader(Path(video["path"]).name)
        st.caption(f"`{video['path']}` · {video['duration']:.1f} s · {video['windows']} windows · "
                   f"scored {video['scored_at']} by model version {video['model_version']}")
        windows = load_windows(Path(video["folder"]), video["content_hash"], video["model_version"])
        left, right = st.columns([1, 2])
        left.metric("Dominant emotion", video["emotion"])
        left.caption(confidence_text(video["mean_confidence"]).capitalize())
        show_probabilities(left, mean_probabilities(video, windows))
        if windows.height:
            show_timeline(right, windows)
            st.markdown("#### Windows and transcript")
            show_windows(st, windows)
        else:
            right.warning("This video's window rows are missing from the folder.")
else:
    st.info("No scored videos in these folders yet.")

st.divider()
st.subheader(f"Rejected files ({rejects.height})")
if rejects.height:
    st.dataframe(rejects.select("path", "reason", "folder"), hide_index=True, width="stretch")
else:
    st.caption("No file was rejected.")
