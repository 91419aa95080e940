"""The HTML report of one scoring batch: a summary table and an emotion timeline per video."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: E402

from emotion_models import atomic  # noqa: E402
from emotion_models.evaluation import data_uri, figure_png  # noqa: E402
from emotion_models.labels import CLASS_NAMES  # noqa: E402
from emotion_models.scoring import SLUGS  # noqa: E402


def timeline_png(windows: pl.DataFrame, title: str) -> str:
    """A step plot of the combined model's class probabilities over time, as a data URI."""
    windows = windows.sort("start")
    figure, axis = plt.subplots(figsize=(8, 2.4))
    edges = windows["start"].to_list() + [windows["end"][-1]]
    for slug, name in zip(SLUGS, CLASS_NAMES):
        values = windows[f"video_{slug}"].to_list()
        axis.stairs(values, edges, label=name, linewidth=2)
    axis.set_ylim(0, 1)
    axis.set_xlabel("seconds")
    axis.set_ylabel("probability")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7, ncols=5, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    return data_uri(figure_png(figure))


def render_batch_report(out: Path, results: list[dict]) -> Path:
    """``out/report.html`` for the files of this batch (scored, skipped and rejected)."""
    keys = [r["key"] for r in results if r.get("key") and r["status"] in ("scored", "skipped")]
    videos = []
    for key in keys:
        summary_path, windows_path = out / "videos" / f"{key}.parquet", out / "windows" / f"{key}.parquet"
        if not (summary_path.exists() and windows_path.exists()):
            continue
        summary = pl.read_parquet(summary_path).to_dicts()[0]
        summary["timeline"] = timeline_png(pl.read_parquet(windows_path), Path(summary["path"]).name)
        summary["shares"] = {name: summary[f"share_{slug}"] for slug, name in zip(SLUGS, CLASS_NAMES)}
        videos.append(summary)
    counts = {status: sum(r["status"] == status for r in results) for status in ("scored", "skipped", "rejected")}
    rejects = [r for r in results if r["status"] == "rejected"]
    env = Environment(loader=PackageLoader("emotion_models", "templates"), autoescape=select_autoescape())
    html = env.get_template("score_report.html.j2").render(videos=videos, counts=counts, rejects=rejects,
                                                          classes=CLASS_NAMES)
    return atomic.write_text(out / "report.html", html)


def summary_markdown(results: list[dict]) -> str:
    """The batch summary as Markdown, for a Prefect artifact."""
    counts = {status: sum(r["status"] == status for r in results) for status in ("scored", "skipped", "rejected")}
    lines = ["# Scoring batch", "", f"scored **{counts['scored']}**, skipped (already scored) {counts['skipped']}, "
             f"rejected **{counts['rejected']}**", "", "| file | status | dominant emotion / reason |", "|---|---|---|"]
    for r in results:
        lines.append(f"| {Path(r['path']).name} | {r['status']} | {r.get('dominant_emotion') or r.get('reason', '')} |")
    return "\n".join(lines) + "\n"
