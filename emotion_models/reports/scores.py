"""The HTML report of one scoring batch: a summary table and an emotion timeline per video.

Timelines are inline SVG step lines drawn by the template: a matplotlib PNG per video cost
0.15-0.2 s, paid serially at the end of every batch (3 s for 20 clips, minutes for thousands),
while the SVG costs about a millisecond, stays sharp when zoomed and names each line on hover.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape

from emotion_models import atomic
from emotion_models.labels import CLASS_NAMES
from emotion_models.scoring.outputs import SLUGS

COLOURS = ("#4c72b0", "#8c8c8c", "#dd8452", "#c44e52", "#8172b3")  # one per class, in label order
PLOT_WIDTH, PLOT_HEIGHT = 760, 150
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def timeline(windows: pl.DataFrame) -> dict:
    """Geometry of one video's timeline: a step line per class of the combined model's
    probabilities (SVG path data in a PLOT_WIDTH x PLOT_HEIGHT box) and the x-axis ticks."""
    windows = windows.sort("start")
    duration = max(float(windows["end"].max()), 1e-6)

    def x(seconds: float) -> float:
        return round(seconds / duration * PLOT_WIDTH, 1)

    def y(probability: float) -> float:
        return round((1 - probability) * PLOT_HEIGHT, 1)

    lines = []
    for slug, name, colour in zip(SLUGS, CLASS_NAMES, COLOURS):
        path, last_end = [], None
        for start, end, value in zip(windows["start"], windows["end"], windows[f"video_{slug}"]):
            path.append(f"V{y(value)}" if last_end == start else f"M{x(start)},{y(value)}")
            path.append(f"H{x(end)}")
            last_end = end
        lines.append({"name": name, "colour": colour, "d": "".join(path)})
    step = next((s for s in TICK_STEPS if duration / s <= 10), TICK_STEPS[-1])
    ticks = [{"x": x(t), "label": f"{t:g}"} for t in range(0, int(duration) + 1, step)]
    return {"lines": lines, "ticks": ticks}


def _counts(results: list[dict], unchanged: int) -> dict[str, int]:
    counts = {status: sum(r["status"] == status for r in results) for status in ("scored", "skipped", "rejected")}
    counts["skipped"] += unchanged
    return counts


def render_batch_report(out: Path, results: list[dict], unchanged: int = 0) -> Path:
    """``out/report.html`` for the files this batch's tasks saw (scored, skipped and rejected);
    ``unchanged`` files, finished in earlier batches and not looked at again, are only counted."""
    keys = [r["key"] for r in results if r.get("key") and r["status"] in ("scored", "skipped")]
    videos = []
    for key in keys:
        summary_path, windows_path = out / "videos" / f"{key}.parquet", out / "windows" / f"{key}.parquet"
        if not (summary_path.exists() and windows_path.exists()):
            continue
        summary = pl.read_parquet(summary_path).to_dicts()[0]
        summary["timeline"] = timeline(pl.read_parquet(windows_path))
        summary["shares"] = {name: summary[f"share_{slug}"] for slug, name in zip(SLUGS, CLASS_NAMES)}
        videos.append(summary)
    counts = _counts(results, unchanged)
    rejects = [r for r in results if r["status"] == "rejected"]
    env = Environment(loader=PackageLoader("emotion_models.reports", "templates"), autoescape=select_autoescape())
    html = env.get_template("score_report.html.j2").render(videos=videos, counts=counts, rejects=rejects,
                                                          legend=list(zip(CLASS_NAMES, COLOURS)),
                                                          width=PLOT_WIDTH, height=PLOT_HEIGHT)
    return atomic.write_text(out / "report.html", html)


def summary_markdown(results: list[dict], unchanged: int = 0) -> str:
    """The batch summary as Markdown, for a Prefect artifact (``unchanged`` files only counted)."""
    counts = _counts(results, unchanged)
    lines = ["# Scoring batch", "", f"scored **{counts['scored']}**, skipped (already scored) {counts['skipped']}, "
             f"rejected **{counts['rejected']}**", "", "| file | status | dominant emotion / reason |", "|---|---|---|"]
    for r in results:
        lines.append(f"| {Path(r['path']).name} | {r['status']} | {r.get('dominant_emotion') or r.get('reason', '')} |")
    return "\n".join(lines) + "\n"
