import polars as pl
import pytest
import torch

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


def test_speaker_folds_need_enough_speakers():
    with pytest.raises(ValueError, match="folds"):
        speaker_folds(_manifest(3), "audio", 4, 0.15, seed=0)
