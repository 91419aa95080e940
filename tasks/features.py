"""Stages `<model>_features`: extract a model's features for every manifest clip of its modality."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import polars as pl

from emotion_models import paths
from emotion_models.features.audio_augment import copy_id
from emotion_models.features.shards import FeatureStore, extract
from emotion_models.nets.audio import AUGMENTED
from emotion_models.nets.spec import ModelSpec
from emotion_models.params import Params

MANIFEST_KEYS = ["clip_id", "path", "dataset", "speaker_id", "label"]


def manifest_rows(spec: ModelSpec, manifest: pl.DataFrame | None = None) -> list[dict]:
    """The model's manifest rows in a fixed pseudo-random order (by a hash of the clip id), so each
    shard is a sample of every corpus and class: training streams shards through a shuffle buffer,
    and shards of one class each (the manifest's order) would make one-class batches."""
    manifest = manifest if manifest is not None else pl.read_parquet(paths.MANIFEST)
    rows = manifest.filter(pl.col("modality") == spec.modality).select(MANIFEST_KEYS).to_dicts()
    return sorted(rows, key=lambda row: hashlib.sha256(row["clip_id"].encode()).hexdigest())


def extract_features(spec: ModelSpec, params: Params, manifest: pl.DataFrame | None = None,
                     progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Extract what is missing from the store (same parameters = skipped); returns (extracted, rejected)."""
    features = getattr(params, spec.name).features
    extracted, rejected = extract(manifest_rows(spec, manifest), spec.featuriser(params), spec.store(params),
                                  features.workers, features.shard_rows, progress)
    if spec.name == "audio":
        for more, fewer in extract_augmented(spec, params, manifest, progress=progress).values():
            extracted, rejected = extracted + more, rejected + fewer
    return extracted, rejected


def extract_augmented(spec: ModelSpec, params: Params, manifest: pl.DataFrame | None = None,
                      transforms: list[str] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> dict[str, tuple[int, int]]:
    """The audio clips' augmented copies (``audio.waveform_augment.transforms``, or ``transforms``), one
    incremental store per transform; (extracted, rejected) per transform."""
    rows = manifest_rows(spec, manifest)
    paths.features_dir(AUGMENTED).mkdir(parents=True, exist_ok=True)  # the stage's out, empty without transforms
    transforms = params.audio.waveform_augment.transforms if transforms is None else transforms
    return {transform: extract_copies(spec, params, transform, spec.augmented_store(params, transform), rows, progress)
            for transform in transforms}


def extract_copies(spec: ModelSpec, params: Params, transform: str, store: FeatureStore, rows: list[dict],
                   progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Every row's copy through ``transform`` (``params.audio.waveform_augment``'s settings) into ``store``;
    (extracted, rejected)."""
    # Importing audiomentations compiles librosa's numba kernels and writes their JIT cache: do it once
    # here, not in every worker at the same time (concurrent writers left a cache that crashed the next
    # process to load it, in a clean-clone CI run).
    import audiomentations  # noqa: F401

    features = params.audio.features
    copies = [{**row, "clip_id": copy_id(row["clip_id"], transform)} for row in rows]
    return extract(copies, spec.augmented_featuriser(params, transform), store, features.workers,
                   features.shard_rows, progress)
