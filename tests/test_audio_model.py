"""The audio network on either representation, and inside the combined video model."""

import pytest
import torch

from emotion_models.features.audio import statistics_size
from emotion_models.features.video import video_array_shapes
from emotion_models.nets.audio import AudioSpec
from emotion_models.nets.face import FaceSpec
from emotion_models.nets.video import VideoEmotionNet
from emotion_models.params import load_params
from tests.conftest import REPO

PARAMS = load_params(REPO / "params.yaml")
STATS = statistics_size(PARAMS.audio.features)  # 69, or 157 with the eGeMAPS functionals
EMBEDDING = 768 * len(PARAMS.audio.features.encoder_layers or [None])  # tiny.en: 768 per encoder cut


def _params(representation: str):
    features = PARAMS.audio.features.model_copy(update={"representation": representation})
    return PARAMS.model_copy(update={"audio": PARAMS.audio.model_copy(update={"features": features})})


@pytest.mark.parametrize("representation, inputs", [("whisper_encoder", {"embedding": (EMBEDDING,)}),
                                                    ("mfcc_cnn", {"mfcc": (3, 126, 13)})])
def test_audio_net_takes_its_representation_and_the_statistics(representation, inputs):
    params, spec = _params(representation), AudioSpec()
    assert spec.arrays(params) == {**inputs, "stats": (STATS,)}
    model = spec.build(spec.model_config(params), pretrained=False).eval()
    batch = {name: torch.randn(4, *shape) for name, shape in spec.arrays(params).items()}
    assert model(batch).shape == (4, 5)
    assert model.embed(batch).shape == (4, PARAMS.audio.head.units)
    if representation == "whisper_encoder":  # no CNN: the standardised embedding goes to the head
        assert not any(name.startswith("backbone") for name, _ in model.named_parameters())
        batch["embedding"] = batch["embedding"] * 3 + 1
        model.mean.fill_(1.0)
        model.std.fill_(3.0)
        shifted = model(batch)
        batch["embedding"] = (batch["embedding"] - 1) / 3
        model.mean.fill_(0.0)
        model.std.fill_(1.0)
        assert torch.allclose(shifted, model(batch), atol=1e-5)


def test_video_model_runs_its_audio_branch_on_the_windows_encoder_embedding():
    params, audio_spec, face_spec = _params("whisper_encoder"), AudioSpec(), FaceSpec()
    face_params = params.model_copy(update={"face": params.face.model_copy(
        update={"backbone": params.face.backbone.model_copy(update={"name": "resnet18"})})})
    audio = audio_spec.build(audio_spec.model_config(params), pretrained=False)
    face = face_spec.build(face_spec.model_config(face_params), pretrained=False)
    model = VideoEmotionNet(audio, face, PARAMS.video.model.head, 16, 1, True).eval()
    shapes = video_array_shapes(params)
    assert shapes["audio_embedding"] == (EMBEDDING,) and shapes["audio_stats"] == (STATS,) and "audio_mfcc" not in shapes
    batch = {name: torch.zeros(2, *shape, dtype=torch.uint8 if name == "frames" else torch.float32)
             for name, shape in shapes.items()}
    batch["frame_mask"] = torch.zeros(2, *shapes["frame_mask"], dtype=torch.bool)
    batch["audio_mask"] = torch.tensor([True, False])
    batch["audio_embedding"] = torch.randn(2, EMBEDDING)
    with torch.no_grad():
        logits = model(batch)
        assert logits.shape == (2, 5)
        model.use["audio"] = False  # switching the audio stream off changes only the window with audio
        silent = model(batch)
    assert not torch.allclose(logits[0], silent[0]) and torch.allclose(logits[1], silent[1])
