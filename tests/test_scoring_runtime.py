"""Scoring's ONNX graphs give what the checkpoints give, and scoring with them never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from emotion_models.export.graphs import export_graphs, quantise
from emotion_models.features.audio import WINDOW_PREFIX, input_shapes
from emotion_models.nets.audio import AudioSpec
from emotion_models.nets.face import FaceSpec
from emotion_models.nets.video import VideoEmotionNet
from emotion_models.params import DenseHead, load_params
from emotion_models.scoring.runtime import META_FILE, OnnxPredictors, TorchPredictors
from emotion_models.scoring.score import MODEL_VIEWS, window_probabilities
from tests.conftest import REPO

FRAMES = 16


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Untrained networks of params.yaml's architectures (batch-norm statistics made non-trivial),
    exported to a model folder as stage scoring_export does."""
    import torch

    torch.manual_seed(0)
    params = load_params(REPO / "params.yaml")
    audio_config, face_config = AudioSpec().model_config(params), FaceSpec().model_config(params)
    audio, face = AudioSpec().build(audio_config, False), FaceSpec().build(face_config, False)
    video = VideoEmotionNet(AudioSpec().build(audio_config, False), FaceSpec().build(face_config, False),
                            DenseHead(**params.video.model.head.model_dump()), params.video.model.sequence_units,
                            params.video.model.sequence_layers, True)
    for model in (audio, face, video):
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
        model.eval()
    model_dir = tmp_path_factory.mktemp("models")
    shapes = input_shapes(params.audio.features)
    temperatures = {"video": 1.3, "audio": 2.0, "face": 0.7}  # calibrated: the graphs divide the logits
    export_graphs(video, audio, face, shapes, params.face.features.size, FRAMES, model_dir / "scoring", temperatures)
    meta = {"video": {"config": {"audio": audio_config, "face": face_config}, "temperature": 1.3},
            "audio": {"config": audio_config, "temperature": 2.0}, "face": {"config": face_config, "temperature": 0.7}}
    (model_dir / "scoring" / META_FILE).write_text(json.dumps(meta))
    return model_dir, TorchPredictors(video, audio, face, temperatures), params, shapes


def windows(params, shapes, n: int = 5) -> dict[str, np.ndarray]:
    """Video windows as extract_windows makes them: some frames without a face, a window without
    any face, one without audio."""
    rng = np.random.default_rng(1)
    size = params.face.features.size
    mask = rng.random((n, FRAMES)) < 0.7
    mask[1] = False
    arrays = {"frames": rng.integers(0, 256, (n, FRAMES, size, size, 3), dtype=np.uint8),
              "frame_mask": mask, "landmarks": rng.random((n, FRAMES, 1404), dtype=np.float32),
              "audio_mask": np.array([True, True, False, True, True][:n]),
              "text": rng.random((n, 9), dtype=np.float32)}
    arrays.update({WINDOW_PREFIX + name: rng.normal(size=(n, *shape)).astype(np.float32)
                   for name, shape in shapes.items()})
    return arrays


def test_exported_graphs_score_windows_as_the_checkpoints_do(exported):
    model_dir, checkpoint, params, shapes = exported
    arrays = windows(params, shapes)
    expected = window_probabilities(checkpoint, arrays)
    got = window_probabilities(OnnxPredictors(model_dir), arrays)
    for view in MODEL_VIEWS:
        np.testing.assert_allclose(got[view], expected[view], atol=1e-4, err_msg=view)
    assert np.isnan(got["audio"][2]).all() and np.isnan(got["face"][1]).all()  # missing streams stay missing
    np.testing.assert_allclose(np.nansum(got["video"], 1), 1.0, atol=1e-5)


def test_int8_face_graph_still_gives_probabilities(exported, tmp_path):
    model_dir, _, params, _ = exported
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy)
    rng = np.random.default_rng(2)
    size = params.face.features.size
    crops = rng.integers(0, 256, (64, size, size, 3), dtype=np.uint8)
    landmarks = np.zeros((64, 1404), np.float32)
    before = OnnxPredictors(copy).face(crops, landmarks)
    quantise(copy / "scoring" / "face.onnx", [{"crops": crops[i:i + 16], "landmarks": landmarks[i:i + 16]}
                                              for i in range(0, 64, 16)])
    after = OnnxPredictors(copy).face(crops, landmarks)
    assert (copy / "scoring" / "face.onnx").stat().st_size < (model_dir / "scoring" / "face.onnx").stat().st_size
    np.testing.assert_allclose(after.sum(1), 1.0, atol=1e-5)
    assert np.abs(after - before).max() < 0.2


HEAVY_IMPORTS = ("torch", "torchvision", "librosa", "numba", "nltk", "textblob", "sklearn", "scipy.signal",
                 "scipy.stats", "pandas")


def test_scoring_with_the_graphs_never_imports_torch(exported):
    """A scoring process's start-up (models loaded, features warmed up) imports none of the heavy
    libraries that training uses (torch, librosa and its numba kernels, NLTK, scikit-learn) and
    loads Whisper once, shared by the transcriber and the window features' encoder, plus one cut copy
    per shorter encoder of audio.features.encoder_layers (tiny.en has 4 encoder layers)."""
    model_dir = exported[0]
    cuts = [k for k in load_params(REPO / "params.yaml").audio.features.encoder_layers or [] if k < 4]
    code = ("import sys; from flows.scoring import score_flow; from emotion_models.params import load_params; "
            "from emotion_models.scoring.score import load_models, warm_up; "
            "from emotion_models.features import transcription; "
            f"models = load_models({str(model_dir)!r}, runtime='onnx'); warm_up(models, load_params(None)); "
            f"print(sorted(m for m in {HEAVY_IMPORTS!r} if m in sys.modules), len(transcription._MODELS))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["[]", str(1 + len(cuts))], result.stdout
