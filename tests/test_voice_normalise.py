"""Per-speaker normalisation of the audio features (emotion_models/features/normalise.py)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from emotion_models.features.normalise import (
    SpeakerNormalisedStore,
    normalise_by_group,
    normalise_group,
    normalise_windows,
)
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


def _config(min_clips: int) -> dict:
    return {"by": "speaker", "min_clips": min_clips,
            "reference": {"embedding": {"mean": [5.0] * 4, "std": [2.0] * 4}}}


def test_a_video_with_enough_speech_windows_is_normalised_on_its_speech_only():
    embedding = np.random.default_rng(5).normal(3.0, 4.0, size=(6, 4)).astype(np.float32)
    speech = np.array([True, True, True, True, False, True])
    out, used = normalise_windows({"embedding": embedding}, speech, _config(5))
    assert used
    np.testing.assert_allclose(out["embedding"][speech].mean(0), 5.0, atol=1e-4)
    np.testing.assert_allclose(out["embedding"][speech].std(0), 2.0, atol=1e-3)
    np.testing.assert_array_equal(out["embedding"][~speech], embedding[~speech])
    for config in (_config(6), None, {"by": "none", "min_clips": 2}):  # too few windows, or not trained so
        out, used = normalise_windows({"embedding": embedding}, speech, config)
        assert not used and out["embedding"] is embedding


def test_scoring_rescores_the_audio_view_of_a_normalised_video():
    from types import SimpleNamespace

    from emotion_models.scoring.score import _video_normalised_audio

    class Predictors:  # the audio "model": its input's first feature as the first class probability
        def audio(self, inputs):
            return np.repeat(inputs["embedding"][:, :1], 5, axis=1)

    windows = 6
    arrays = {"audio_embedding": np.full((windows, 4), 9.0, np.float32) + np.arange(windows)[:, None],
              "audio_mask": np.ones(windows, bool), "frame_mask": np.zeros((windows, 2), bool),
              "frames": np.zeros((windows, 2, 8, 8, 3), np.uint8), "landmarks": np.zeros((windows, 2, 4), np.float32)}
    probabilities = {"audio": Predictors().audio({"embedding": arrays["audio_embedding"]})}
    speech = np.ones(windows, bool)
    models = SimpleNamespace(predictors=Predictors(), audio_normalise=_config(6))
    assert _video_normalised_audio(models, arrays, speech, probabilities)
    assert probabilities["audio"][:, 0].mean() == pytest.approx(5.0, abs=1e-4)  # the reference, not 11.5
    models.audio_normalise = _config(7)
    before = probabilities["audio"].copy()
    assert not _video_normalised_audio(models, arrays, speech, probabilities)
    np.testing.assert_array_equal(probabilities["audio"], before)
