"""The app's charts, in Altair (Streamlit draws Vega-Lite natively); one colour per emotion throughout."""

from __future__ import annotations

import altair as alt
import polars as pl

from emotion_models.labels import CLASS_NAMES
from emotion_models.reports.scores import COLOURS

EMOTION_COLOURS = alt.Scale(domain=list(CLASS_NAMES), range=list(COLOURS))


def probability_bars(probabilities: dict[str, float], title: str = "class probabilities") -> alt.Chart:
    """One horizontal bar per emotion, in label order."""
    data = pl.DataFrame({"emotion": list(probabilities), "probability": list(probabilities.values())})
    bars = alt.Chart(data, title=title).mark_bar().encode(
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("emotion:N", sort=list(CLASS_NAMES), title=None, axis=alt.Axis(labelOverlap=False)),
        color=alt.Color("emotion:N", scale=EMOTION_COLOURS, legend=None),
        tooltip=["emotion", alt.Tooltip("probability:Q", format=".3f")])
    labels = bars.mark_text(align="left", dx=3).encode(text=alt.Text("probability:Q", format=".2f"),
                                                        color=alt.value("black"))
    return (bars + labels).properties(height=alt.Step(26))


def timeline_chart(long: pl.DataFrame, views: list[str]) -> alt.VConcatChart:
    """Per view, each emotion's probability over time: one horizontal segment per window."""
    charts = []
    for view in views:
        data = long.filter(pl.col("view") == view)
        charts.append(alt.Chart(data, title=view).mark_rule(strokeWidth=3).encode(
            x=alt.X("start:Q", title="seconds", axis=alt.Axis(tickCount=8)), x2="end:Q",
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("emotion:N", scale=EMOTION_COLOURS, sort=list(CLASS_NAMES)),
            tooltip=["window", "start", "end", "emotion", alt.Tooltip("probability:Q", format=".3f")],
        ).properties(height=110, width="container"))
    return alt.vconcat(*charts).resolve_scale(x="shared")


def waveform_chart(envelope: pl.DataFrame) -> alt.Chart:
    """The recording's waveform envelope (low and high sample of each slice)."""
    return alt.Chart(envelope, title="waveform").mark_area(opacity=0.8).encode(
        x=alt.X("time:Q", title="seconds"), y=alt.Y("low:Q", title="amplitude"), y2="high:Q",
    ).properties(height=150)


def emotion_counts(videos: pl.DataFrame) -> alt.Chart:
    """How many of the videos have each dominant emotion."""
    counts = videos.group_by("emotion").len("videos")
    return alt.Chart(counts, title="dominant emotion").mark_bar().encode(
        x=alt.X("videos:Q", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("emotion:N", sort=[*CLASS_NAMES, "no person"], title=None, axis=alt.Axis(labelOverlap=False)),
        color=alt.Color("emotion:N", scale=alt.Scale(domain=[*CLASS_NAMES, "no person"],
                                                     range=[*COLOURS, "#cccccc"]), legend=None),
        tooltip=["emotion", "videos"]).properties(height=alt.Step(26))


def confusion_chart(confusion: pl.DataFrame) -> alt.LayerChart:
    """The confusion matrix as a heat map with counts (rows: actual, columns: predicted)."""
    base = alt.Chart(confusion).encode(x=alt.X("predicted:N", sort=list(CLASS_NAMES)),
                                       y=alt.Y("actual:N", sort=list(CLASS_NAMES)))
    cells = base.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")),
                                    tooltip=["actual", "predicted", "count"])
    text = base.mark_text().encode(text="count:Q")
    return (cells + text).properties(title="confusion (test split)", height=alt.Step(34), width=alt.Step(60))


def curves_chart(history: pl.DataFrame) -> alt.HConcatChart:
    """Training curves per epoch: losses on the left, accuracy and macro-F1 on the right."""
    def panel(columns: list[str], title: str) -> alt.Chart:
        present = [c for c in columns if c in history.columns]
        return alt.Chart(history.select("epoch", *present), title=title).transform_fold(
            present, as_=["series", "value"]).mark_line(point=True).encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")), y=alt.Y("value:Q", title=None),
            color=alt.Color("series:N", title=None),
            tooltip=["epoch:Q", "series:N", alt.Tooltip("value:Q", format=".3f")]).properties(height=200, width=320)
    return alt.hconcat(panel(["train_loss", "val_loss"], "loss"),
                       panel(["train_accuracy", "val_accuracy", "val_macro_f1"], "accuracy / macro-F1"))


def trials_chart(trials: pl.DataFrame) -> alt.Chart:
    """Validation accuracy of each tuning trial."""
    return alt.Chart(trials.select("trial", "val_accuracy", "val_macro_f1", "hyperparameters"),
                     title="tuning trials").mark_circle(size=70).encode(
        x="trial:Q", y=alt.Y("val_accuracy:Q", title="validation accuracy"),
        tooltip=["trial", alt.Tooltip("val_accuracy:Q", format=".3f"), alt.Tooltip("val_macro_f1:Q", format=".3f"),
                 "hyperparameters"]).properties(height=200)
