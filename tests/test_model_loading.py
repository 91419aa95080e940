"""Loading a checkpoint builds the network without random weights and gives the saved model back."""

from __future__ import annotations

import json

import pytest
import torch

from emotion_models.features.audio import statistics_size
from emotion_models.nets.audio import AudioSpec
from emotion_models.params import load_params
from emotion_models.training.loop import save_checkpoint
from tests.conftest import REPO


def test_a_loaded_model_is_the_saved_one(tmp_path):
    spec, params = AudioSpec(), load_params(REPO / "params.yaml")
    config = spec.model_config(params)
    model = spec.build(config, pretrained=False).eval()
    save_checkpoint(tmp_path / "model.pt", model, {"config": config})
    loaded, meta = spec.load(tmp_path / "model.pt")
    batch = {"embedding": torch.randn(3, *spec.arrays(params)["embedding"]),  # the Whisper-encoder audio model
             "stats": torch.randn(3, statistics_size(params.audio.features))}
    with torch.no_grad():
        assert torch.equal(loaded(batch), model(batch))
    assert meta["config"] == config and not loaded.training
    assert all(p.requires_grad for p in loaded.parameters())  # Grad-CAM and fine-tuning still work


def test_a_checkpoint_missing_weights_is_named(tmp_path):
    spec = AudioSpec()
    config = spec.model_config(load_params(REPO / "params.yaml"))
    model = spec.build(config, pretrained=False)
    payload = {"state_dict": {k: v for k, v in model.state_dict().items() if not k.startswith("head")},
               "meta": json.dumps({"config": config})}
    torch.save(payload, tmp_path / "partial.pt")
    with pytest.raises(RuntimeError, match="head"):
        spec.load(tmp_path / "partial.pt")
