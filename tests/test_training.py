from collections import Counter

import numpy as np
import polars as pl
import pytest
import torch

from emotion_models.features.shards import Extracted, FeatureStore, extract
from emotion_models.training.data import ShardDataset, balanced_repeats
from emotion_models.training.loop import mix_batch
from tasks.cross_validate import speaker_folds


def test_mixup_blends_inputs_keeps_labels_and_ors_masks():
    batch = {"mfcc": torch.tensor([[0.0, 2.0], [4.0, 6.0]]), "crop": torch.tensor([[10], [30]], dtype=torch.uint8),
             "frame_mask": torch.tensor([True, False]), "label": torch.tensor([1, 3]), "clip_id": ["a", "b"]}
    mixed = mix_batch(batch, torch.tensor([1, 0]), 0.75)
    assert torch.allclose(mixed["mfcc"], torch.tensor([[1.0, 3.0], [3.0, 5.0]]))
    assert torch.allclose(mixed["crop"], torch.tensor([[15.0], [25.0]]))
    assert mixed["frame_mask"].tolist() == [True, True]
    assert mixed["label"].tolist() == [1, 3] and mixed["clip_id"] == ["a", "b"]
    unchanged = mix_batch(batch, torch.tensor([1, 0]), 1.0)
    assert torch.equal(unchanged["mfcc"], batch["mfcc"])


def _manifest(speakers: int) -> pl.DataFrame:
    rows = [{"clip_id": f"s{s}-{i}", "corpus": "ravdess", "speaker_id": f"actor{s:02d}", "modality": "audio",
             "composed": False, "label": i % 5} for s in range(1, speakers + 1) for i in range(3)]
    rows.append({"clip_id": "composed", "corpus": "ravdess", "speaker_id": "actor99", "modality": "audio",
                 "composed": True, "label": 0})
    return pl.DataFrame(rows)


@pytest.mark.parametrize("folds", [2, 3, 6])
def test_speaker_folds_test_every_speaker_once_and_never_share_a_speaker(folds):
    result = speaker_folds(_manifest(12), "audio", folds, 0.15, seed=42)
    assert len(result) == folds
    tested = [s for fold in result for s in fold["test"]]
    assert sorted(tested) == sorted({("ravdess", f"actor{i:02d}") for i in range(1, 13)})  # composed left out
    for fold in result:
        parts = [fold["train"], fold["val"], fold["test"]]
        assert sum(len(p) for p in parts) == len(set().union(*parts))  # no speaker in two parts
        assert len(fold["val"]) == 2 and fold["train"]


def test_speaker_folds_of_one_corpus_leave_the_others_out():
    other = pl.DataFrame([{"clip_id": f"fer{i}", "corpus": "fer2013", "speaker_id": f"img{i}", "modality": "audio",
                           "composed": False, "label": 0} for i in range(50)])
    result = speaker_folds(pl.concat([_manifest(9), other]), "audio", 3, 0.15, seed=1, corpus="ravdess")
    for fold in result:
        assert {corpus for part in fold.values() for corpus, _ in part} == {"ravdess"}
        assert len(fold["test"]) == 3


def test_speaker_folds_need_enough_speakers():
    with pytest.raises(ValueError, match="folds"):
        speaker_folds(_manifest(3), "audio", 4, 0.15, seed=0)


def test_corpus_class_balance_gives_each_corpus_and_class_its_share():
    # a large corpus with a frequent class, a small corpus with two classes
    labels = {f"big{i}": 0 if i < 900 else 1 for i in range(1000)} | {f"small{i}": i % 2 for i in range(20)}
    corpora = {clip: "big" if clip.startswith("big") else "small" for clip in labels}
    repeats = balanced_repeats(labels, corpora, "corpus_class", 40_000, np.random.default_rng(0))
    drawn = Counter()
    for clip, times in repeats.items():
        drawn[corpora[clip], labels[clip]] += times
    assert sum(drawn.values()) == 40_000
    for group in [("big", 0), ("big", 1), ("small", 0), ("small", 1)]:
        assert abs(drawn[group] / 40_000 - 0.25) < 0.02, drawn
    by_class = balanced_repeats(labels, corpora, "class", 40_000, np.random.default_rng(0))
    class_share = sum(t for c, t in by_class.items() if labels[c] == 1) / 40_000
    assert abs(class_share - 0.5) < 0.02
    again = balanced_repeats(labels, corpora, "corpus_class", 40_000, np.random.default_rng(0))
    assert again == repeats  # the same seed and epoch draw the same rows


def test_shard_dataset_yields_the_balanced_draws(tmp_path):
    store = FeatureStore(tmp_path / "store", "key", "parquet")
    rows = [{"clip_id": f"c{i}", "path": f"/x/c{i}.wav"} for i in range(12)]

    extract(rows, _constant_features, store, workers=1, shard_rows=5)
    labels = {f"c{i}": i % 3 for i in range(12)}
    corpora = {f"c{i}": "a" if i < 9 else "b" for i in range(12)}
    data = ShardDataset(store, {"x": (2,)}, labels, shuffle=True, seed=1, balance="corpus_class",
                        corpora=corpora, epoch_samples=60)
    first = [s["clip_id"] for s in data]
    assert len(first) == len(data) == 60
    assert 20 <= sum(c in {"c9", "c10", "c11"} for c in first) <= 40  # corpus b: 3 clips, about half the draws
    data.set_epoch(1)
    assert sorted(s["clip_id"] for s in data) != sorted(first)  # a fresh draw each epoch
    data.set_epoch(0)
    assert [s["clip_id"] for s in data] == first


def _constant_features(row: dict) -> Extracted:
    return Extracted(row, {"x": np.full(2, float(row["clip_id"][1:]), np.float32)})
