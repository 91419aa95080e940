"""Harmonisation: every enabled dataset's clips in one speaker-aware manifest.

The manifest (one row per clip) has clip_id, dataset, corpus, path, modality, speaker_id,
speaker_sex, source_emotion, emotion (classic name), label (5-class index), split and
composed (synthetic CI clips, never in reported accuracy). Rejects have dataset, path, reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from emotion_models.data.datasets import Clip, Reject, get_adapter
from emotion_models.data.sources import DatasetSource
from emotion_models.data.splits import assign_splits
from emotion_models.labels import CLASS_NAMES, DroppedEmotion, harmonise_emotion
from emotion_models.params import DataConfig

MANIFEST_SCHEMA = {
    "clip_id": pl.Utf8, "dataset": pl.Utf8, "corpus": pl.Utf8, "path": pl.Utf8, "modality": pl.Utf8,
    "speaker_id": pl.Utf8, "speaker_sex": pl.Utf8, "source_emotion": pl.Utf8, "emotion": pl.Utf8,
    "label": pl.Int8, "split": pl.Utf8, "composed": pl.Boolean,
}
REJECT_SCHEMA = {"dataset": pl.Utf8, "path": pl.Utf8, "reason": pl.Utf8}


def build_manifest(
    sources: Iterable[DatasetSource], data: DataConfig, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scan each dataset with its adapter; return ``(manifest, rejects)``."""
    rows: list[dict] = []
    rejects: list[dict] = []
    fixed: dict[tuple[str, str], str] = {}
    rules = data.labels.as_dict()
    for source in sources:
        adapter = get_adapter(source.name, data)
        corrupt = set(source.corrupt)
        root_prefix = source.root.rstrip("/") + "/"
        config = data.datasets.get(source.name)
        items = adapter.scan(_path(source.root), _path(source.metadata_dir))
        if config is not None and config.max_per_class is not None:
            items = _capped(items, config.max_per_class, seed)
        for item in items:
            if isinstance(item, Reject):
                rejects.append({"dataset": source.name, "path": item.path, "reason": item.reason})
                continue
            if item.path in corrupt:
                rejects.append({"dataset": source.name, "path": item.path, "reason": "published checksum mismatch"})
                continue
            try:
                emotion, label = harmonise_emotion(item.emotion, rules)
            except DroppedEmotion as exc:
                rejects.append({"dataset": source.name, "path": item.path, "reason": str(exc)})
                continue
            rows.append(_row(source.name, adapter.corpus, adapter.modality, item, emotion, label, root_prefix))
            if item.fixed_split is not None:
                fixed[(adapter.corpus, item.speaker_id)] = item.fixed_split
    manifest = pl.DataFrame(rows, schema=MANIFEST_SCHEMA)
    if manifest.height:
        speakers = manifest.select("corpus", "speaker_id").unique().iter_rows()
        splits = assign_splits(speakers, data.split.test_fraction, data.split.val_fraction, seed, fixed,
                               data.split.min_speakers)
        manifest = manifest.with_columns(
            pl.struct("corpus", "speaker_id")
            .map_elements(lambda s: splits[(s["corpus"], s["speaker_id"])], return_dtype=pl.Utf8)
            .alias("split")
        )
    return manifest.sort("clip_id"), pl.DataFrame(rejects, schema=REJECT_SCHEMA)


def _capped(items: Iterable[Clip | Reject], cap: int, seed: int) -> Iterator[Clip | Reject]:
    """Every reject, and at most ``cap`` clips per (emotion, fixed split), chosen by a seeded hash of the path."""
    groups: dict[tuple[str, str | None], list[Clip]] = {}
    for item in items:
        if isinstance(item, Reject):
            yield item
        else:
            groups.setdefault((item.emotion, item.fixed_split), []).append(item)
    for clips in groups.values():
        clips.sort(key=lambda clip: hashlib.sha256(f"{seed}:{clip.path}".encode()).hexdigest())
        yield from clips[:cap]


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _row(dataset: str, corpus: str, modality: str, clip: Clip, emotion: str, label: int, root_prefix: str) -> dict:
    relative = clip.path[len(root_prefix):] if clip.path.startswith(root_prefix) else clip.path
    return {
        "clip_id": f"{dataset}:{relative}", "dataset": dataset, "corpus": corpus, "path": clip.path,
        "modality": modality, "speaker_id": clip.speaker_id, "speaker_sex": clip.speaker_sex,
        "source_emotion": clip.emotion, "emotion": emotion, "label": label, "split": None, "composed": False,
    }


def summary_markdown(manifest: pl.DataFrame, rejects: pl.DataFrame) -> str:
    """Counts per dataset x class x split, speakers per split, and rejects by reason, as Markdown."""
    lines = ["# Data summary", "", f"{manifest.height} clips, {rejects.height} rejects.", ""]
    header = "| dataset | split | speakers | " + " | ".join(CLASS_NAMES) + " | total |"
    lines += [header, "|" + "---|" * (len(CLASS_NAMES) + 4)]
    for (dataset, split), group in manifest.sort(["dataset", "split"]).group_by(["dataset", "split"], maintain_order=True):
        counts = [group.filter(pl.col("label") == i).height for i in range(len(CLASS_NAMES))]
        lines.append(
            f"| {dataset} | {split} | {group['speaker_id'].n_unique()} | "
            + " | ".join(map(str, counts)) + f" | {group.height} |"
        )
    if rejects.height:
        lines += ["", "## Rejects", "", "| dataset | reason | files |", "|---|---|---|"]
        grouped = rejects.group_by(["dataset", "reason"]).len().sort(["dataset", "len"], descending=[False, True])
        for dataset, reason, count in grouped.head(50).iter_rows():
            lines.append(f"| {dataset} | {reason} | {count} |")
    return "\n".join(lines) + "\n"
