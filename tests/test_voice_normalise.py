"""Per-speaker normalisation of the audio features (emotion_models/features/normalise.py)."""

from __future__ import annotations

import numpy as np
import polars as pl

from emotion_models.features.normalise import SpeakerNormalisedStore, normalise_by_group, normalise_group
from emotion_models.features.shards import FeatureStore


def _speakers(rng: np.random.Generator, clips: int = 40) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two speakers sharing the same emotion signal, one shifted and scaled (another voice and room)."""
    signal = rng.normal(size=(clips, 6))
    a, b = signal[: clips // 2], signal[clips // 2:]
    values = np.concatenate([a, 3.0 * b + 10.0]).astype(np.float32)
    return values, signal, ["a"] * (clips // 2) + ["b"] * (clips // 2)


def test_a_speaker_offset_and_scale_are_removed():
    values, _, groups = _speakers(np.random.default_rng(0))
    out, used = normalise_by_group(values, groups, np.zeros(6), np.ones(6), min_clips=2)
    assert used.all()
    for speaker in ("a", "b"):
        rows = np.array(groups) == speaker
        np.testing.assert_allclose(out[rows].mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(out[rows].std(0), 1.0, atol=1e-4)
    # the two speakers now overlap: their means differed by 10 before
    assert abs(out[: 20].mean() - out[20:].mean()) < 1e-4


def test_normalised_values_land_on_the_reference():
    values, _, groups = _speakers(np.random.default_rng(1))
    reference_mean, reference_std = np.arange(6.0), np.full(6, 2.0)
    out, _ = normalise_by_group(values, groups, reference_mean, reference_std, min_clips=2)
    np.testing.assert_allclose(out[:20].mean(0), reference_mean, atol=1e-4)
    np.testing.assert_allclose(out[20:].std(0), reference_std, atol=1e-3)


def test_a_single_clip_keeps_its_features():
    clip = np.random.default_rng(2).normal(size=(1, 6)).astype(np.float32)
    out, used = normalise_group(clip, np.zeros(6), np.ones(6), min_clips=2)
    assert not used
    np.testing.assert_array_equal(out, clip)


def test_groups_below_the_threshold_keep_todays_path():
    values, _, groups = _speakers(np.random.default_rng(3), clips=12)  # 6 clips per speaker
    out, used = normalise_by_group(values, groups, np.zeros(6), np.ones(6), min_clips=7)
    assert not used.any()
    np.testing.assert_array_equal(out, values)
    out, used = normalise_by_group(values, groups, np.zeros(6), np.ones(6), min_clips=6)
    assert used.all()


def test_store_reads_each_speaker_normalised_and_stores_raw(tmp_path):
    values, _, groups = _speakers(np.random.default_rng(4))
    rows = [{"clip_id": f"c{i}", "dataset": "corpus", "speaker_id": g, "label": 0} for i, g in enumerate(groups)]
    plain = FeatureStore(tmp_path, "k", "parquet")
    plain.write_shard(rows[:25], {"embedding": values[:25]})
    plain.write_shard(rows[25:], {"embedding": values[25:]})
    store = SpeakerNormalisedStore(tmp_path, "k", "parquet", min_clips=2)
    tables, arrays = zip(*store.iter_shards(["embedding"], {"embedding": (6,)}))
    out = np.concatenate([a["embedding"] for a in arrays])
    speaker = np.array(pl.concat(tables)["speaker_id"].to_list())
    np.testing.assert_allclose(out[speaker == "a"].mean(0), out[speaker == "b"].mean(0), atol=1e-4)
    np.testing.assert_allclose(out[speaker == "a"].mean(0), values.mean(0), atol=1e-4)  # the reference
    raw = np.concatenate([a["embedding"] for _, a in plain.iter_shards(["embedding"], {"embedding": (6,)})])
    np.testing.assert_array_equal(raw, values)  # what is stored is never normalised
