"""What every page of the app shares: the project it runs in (set by `emotion app`) and cached loaders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import streamlit as st

from app import ENV_MODELS, ENV_PARAMS, ENV_SCORES
from app.charts import probability_bars, timeline_chart
from emotion_models.contract import REJECT_SCHEMA, VIDEO_SCHEMA, VIEW_TITLES
from emotion_models.params import Params, ParamsError, load_params
from emotion_models.scoring.results import (
    TableReader,
    estimate_view,
    timeline,
    videos_table,
    views_of,
    window_summary,
)


@dataclass(frozen=True)
class AppConfig:
    """The project the app reads: params.yaml, models/, reports/ and the scored folders."""

    root: Path
    params_path: Path
    model_dir: Path
    scores: tuple[Path, ...]
    params: Params


def app_config() -> AppConfig:
    """The configuration `emotion app` passed in the environment; stops the page with a clear error when
    params.yaml cannot be read."""
    root = Path.cwd()
    params_path = Path(os.environ.get(ENV_PARAMS, root / "params.yaml"))
    try:
        params = load_params(params_path)
    except ParamsError as exc:
        st.error(f"Cannot start: {exc}")
        st.stop()
    given = [Path(p) for p in os.environ.get(ENV_SCORES, "").split(os.pathsep) if p]
    scores = tuple(given) if given else (root / params.scoring.out,)
    return AppConfig(root, params_path, Path(os.environ.get(ENV_MODELS, root / "models")), scores, params)


@st.cache_resource(max_entries=64)
def table_reader(folder: str, table: str) -> TableReader:
    """One incremental reader per folder and table, shared by every session of the app."""
    return TableReader(Path(folder), table, VIDEO_SCHEMA if table == "videos" else REJECT_SCHEMA)


def scored_tables(folders: tuple[Path, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Videos and rejects of ``folders``; each file is read once, a refresh reads only new files."""
    videos = videos_table([table_reader(str(f), "videos").read().drop("file").with_columns(
        pl.lit(str(f)).alias("folder")) for f in folders])
    rejects = [table_reader(str(f), "rejects").read().drop("file").with_columns(pl.lit(str(f)).alias("folder"))
               for f in folders]
    return videos, pl.concat(rejects) if rejects else pl.DataFrame()


def confidence_text(value: float | None) -> str:
    """"confidence 0.62", or what a missing confidence means (no window with a person); a confidence near
    chance (0.20 for 5 emotions) says so."""
    if value is None:
        return "no confidence: no person in any window"
    return f"confidence {value:.2f}" + (" (unsure: chance is 0.20)" if value < 0.4 else "")


def show_probabilities(container, probabilities: dict[str, float] | None) -> None:
    """The mean probability of each emotion over the windows, or why there is none."""
    if probabilities is None:
        container.caption("No window has an estimate: no person was seen or heard.")
    else:
        container.altair_chart(probability_bars(probabilities, "mean probability per emotion"), width="stretch")


def show_windows(container, windows: pl.DataFrame) -> None:
    """One row per window: each view's top emotion and probability, what was present, the transcript."""
    table = window_summary(windows)
    container.dataframe(table, hide_index=True, width="stretch", column_config={
        name: st.column_config.NumberColumn(format="%.2f") for name in table.columns if name.endswith(" p")})


def show_timeline(container, windows: pl.DataFrame) -> None:
    """Each emotion's probability per window for the estimate and each model; names the views with no value
    in any window (no face, no speech, no person) instead of drawing empty charts."""
    long = timeline(windows)
    drawn = [VIEW_TITLES[v] for v in views_of(windows) if VIEW_TITLES[v] in set(long["view"].to_list())]
    empty = [VIEW_TITLES[v] for v in views_of(windows) if VIEW_TITLES[v] not in drawn]
    container.caption(f"Each emotion's probability in each window: the {VIEW_TITLES[estimate_view(windows)]} and "
                      "each model on its own." + (f" No value in any window: {', '.join(empty)}." if empty else ""))
    if drawn:
        container.altair_chart(timeline_chart(long, drawn), width="stretch")
