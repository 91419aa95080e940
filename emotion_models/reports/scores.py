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
from emotion_models.labels import CLASS_NAMES, SLUGS

COLOURS = ("#4c72b0", "#8c8c8c", "#dd8452", "#c44e52", "#8172b3")  # one per class, in label order
PLOT_WIDTH, PLOT_HEIGHT = 760, 150
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def timeline(windows: pl.DataFrame) -> dict:
    """Geometry of one video's timeline: a step line per class of the fused estimate (SVG path data
    in a PLOT_WIDTH x PLOT_HEIGHT box, broken where a window has no person) and the x-axis ticks."""
    windows = windows.sort("start")
    duration = max(float(windows["end"].max()), 1e-6)

    def x(seconds: float) -> float:
        return round(seconds / duration * PLOT_WIDTH, 1)

    def y(probability: float) -> float:
        return round((1 - probability) * PLOT_HEIGHT, 1)

    lines = []
    for slug, name, colour in zip(SLUGS, CLASS_NAMES, COLOURS):
        path, last_end = [], None
        for start, end, value in zip(windows["start"], windows["end"], windows[f"fused_{slug}"]):
            if value is None:  # no person: no estimate, a gap in the line
                last_end = None
                continue
            path.append(f"V{y(value)}" if last_end == start else f"M{x(start)},{y(value)}")
            path.append(f"H{x(end)}")
            last_end = end
        lines.append({"name": name, "colour": colour, "d": "".join(path)})
    step = next((s for s in TICK_STEPS if duration / s <= 10), TICK_STEPS[-1])
    ticks = [{"x": x(t), "label": f"{t:g}"} for t in range(0, int(duration) + 1, step)]
    gaps = [{"x": x(start), "width": round(x(end) - x(start), 1)}
            for start, end, value in zip(windows["start"], windows["end"], windows[f"fused_{SLUGS[0]}"]) if value is None]
    return {"lines": lines, "ticks": ticks, "gaps": gaps}


def batch_counts(results: list[dict], unchanged: int = 0) -> dict[str, int]:
    """Files scored, skipped and rejected; ``unchanged`` files (finished in earlier batches and not
    looked at again) count as skipped."""
    counts = {status: sum(r["status"] == status for r in results) for status in ("scored", "skipped", "rejected")}
    counts["skipped"] += unchanged
    return counts


def fusion_note(method: str, reason: str, weights: dict[str, float]) -> str:
    """One sentence on how the batch's estimates were made, for the report and the artifacts."""
    if method == "learned":
        return f"Estimates: the learned fusion (combined model), chosen because {reason}."
    shown = ", ".join(f"{view} {weight:.2f}" for view, weight in weights.items())
    return (f"Estimates: late fusion (weighted log-linear pooling) of the audio, face and text views present "
            f"in each window, weights {shown}; the learned fusion is not used: {reason}.")


def render_batch_report(out: Path, results: list[dict], note: str, unchanged: int = 0) -> Path:
    """``out/report.html`` for the files this batch's tasks saw (scored, skipped and rejected);
    ``unchanged`` files, finished in earlier batches and not looked at again, are only counted."""
    paths: dict[str, list[str]] = {}  # one entry per content; every path of the batch that holds it
    for r in results:
        if r.get("key") and r["status"] in ("scored", "skipped"):
            paths.setdefault(r["key"], []).append(r["path"])
    videos = []
    for key, found in paths.items():
        summary_path, windows_path = out / "videos" / f"{key}.parquet", out / "windows" / f"{key}.parquet"
        if not (summary_path.exists() and windows_path.exists()):
            continue
        summary = pl.read_parquet(summary_path).to_dicts()[0]
        summary["also_at"] = [path for path in found if path != summary["path"]]
        summary["timeline"] = timeline(pl.read_parquet(windows_path))
        summary["classes"] = [{"name": name, "share": summary[f"share_{slug}"],
                               "probability": summary[f"mean_probability_{slug}"]}
                              for slug, name in zip(SLUGS, CLASS_NAMES)]
        videos.append(summary)
    rejects = [r for r in results if r["status"] == "rejected"]
    env = Environment(loader=PackageLoader("emotion_models.reports", "templates"), autoescape=select_autoescape())
    html = env.get_template("score_report.html.j2").render(videos=videos, counts=batch_counts(results, unchanged),
                                                          rejects=rejects, note=note,
                                                          legend=list(zip(CLASS_NAMES, COLOURS)),
                                                          width=PLOT_WIDTH, height=PLOT_HEIGHT)
    return atomic.write_text(out / "report.html", html)


def outcome(result: dict) -> str:
    """What a batch row says about one file: its dominant emotion, "no person", or the reason."""
    if result["status"] == "rejected" or result.get("reason"):
        return result.get("reason", "")
    return result.get("dominant_emotion") or "no person (no face, no speech)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(results: list[dict], note: str, folders: list[str], last: dict | None = None,
                     unchanged: int = 0) -> str:
    """The batch summary as Markdown, for a Prefect artifact (``unchanged`` files only counted). A
    batch with nothing new says so and points to ``last`` (the last batch that scored or rejected
    something), whose results stand."""
    counts = batch_counts(results, unchanged)
    lines = [f"# Scoring batch: {', '.join(folders)}", ""]
    if not counts["scored"] and not counts["rejected"]:
        lines.append(f"**Nothing new**: {counts['skipped']} files already scored by this model version.")
        if last:
            link = f"[flow run]({last['flow_run_url']})" if last.get("flow_run_url") else f"flow run {last.get('flow_run_id')}"
            lines.append(f"The last results are those of the batch of {last['finished_at']} ({link}: scored "
                         f"{last['counts']['scored']}, rejected {last['counts']['rejected']}); "
                         f"report: `{last['report']}`.")
        return "\n".join(lines) + "\n"
    lines += [f"scored **{counts['scored']}**, skipped (already scored) {counts['skipped']}, "
              f"rejected **{counts['rejected']}**", "", note, "",
              "| file | status | dominant emotion / reason |", "|---|---|---|"]
    for r in results:
        lines.append(f"| {_cell(Path(r['path']).name)} | {r['status']} | {_cell(outcome(r))} |")
    return "\n".join(lines) + "\n"
