"""Stage `harmonise`: one manifest of every clip, labelled and split by speaker."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from emotion_models import atomic, paths
from emotion_models.data.compose import compose_clips
from emotion_models.data.manifest import build_manifest, summary_markdown
from emotion_models.data.sources import DatasetSource
from emotion_models.params import Params


def read_sources(path: Path = paths.SOURCES) -> list[DatasetSource]:
    payload = json.loads(Path(path).read_text())
    return [
        DatasetSource(**{**item, "corrupt": tuple(item.get("corrupt", ()))})
        for item in payload["datasets"].values()
    ]


def harmonise(params: Params, sources: list[DatasetSource] | None = None) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """Write the manifest, its rejects and the Markdown summary; return all three."""
    manifest, rejects = build_manifest(sources if sources is not None else read_sources(), params.data, params.seed)
    composed = compose_clips(manifest, params.video.features.compose_clips, paths.COMPOSED, params.seed)
    atomic.write_parquet(paths.COMPOSED / "index.parquet", composed)
    manifest = pl.concat([manifest, composed]).sort("clip_id")
    atomic.write_parquet(paths.MANIFEST, manifest)
    atomic.write_parquet(paths.REJECTS, rejects)
    summary = summary_markdown(manifest, rejects)
    atomic.write_text(paths.report_dir("data") / "summary.md", summary)
    return manifest, rejects, summary
