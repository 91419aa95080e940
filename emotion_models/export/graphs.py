"""The trained networks as ONNX graphs for scoring (emotion_models.scoring.runtime), their
probabilities calibrated by each checkpoint's temperature, and int8 quantisation of the face CNNs
calibrated on training crops."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion_models.features.audio import WINDOW_PREFIX
from emotion_models.features.face import LANDMARK_VALUES
from emotion_models.features.text import N_TEXT_FEATURES
from emotion_models.nets.audio import AudioEmotionNet
from emotion_models.nets.face import FaceEmotionNet, FaceEnsemble
from emotion_models.nets.video import VideoEmotionNet
from emotion_models.scoring.runtime import FUSION_INPUTS

OPSET = 17
QUANTISED_OPS = ["Conv", "MatMul", "Gemm"]


class FaceProbabilities(nn.Module):
    """Calibrated class probabilities: the logits divided by the checkpoint's temperature."""

    def __init__(self, model: FaceEmotionNet | FaceEnsemble, temperature: float = 1.0) -> None:
        super().__init__()
        self.model, self.temperature = model, temperature

    def forward(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model({"crop": crops, "landmarks": landmarks}) / self.temperature, 1)


class FaceEmbeddings(nn.Module):
    def __init__(self, model: FaceEmotionNet | FaceEnsemble) -> None:
        super().__init__()
        self.model = model

    def forward(self, crops: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return self.model.embed(crops, landmarks)


class AudioProbabilities(nn.Module):
    """Calibrated class probabilities: the logits divided by the checkpoint's temperature."""

    def __init__(self, model: AudioEmotionNet, names: list[str], temperature: float = 1.0) -> None:
        super().__init__()
        self.model, self.names, self.temperature = model, names, temperature

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(dict(zip(self.names, inputs))) / self.temperature, 1)


class FusionProbabilities(nn.Module):
    """Calibrated class probabilities of the combined model: its logits divided by its temperature."""

    def __init__(self, model: VideoEmotionNet, names: list[str], temperature: float = 1.0) -> None:
        super().__init__()
        self.model, self.names, self.temperature = model, names, temperature

    def forward(self, faces, frame_mask, audio_mask, text, *audio: torch.Tensor) -> torch.Tensor:
        batch = {"audio_mask": audio_mask, "text": text, **{WINDOW_PREFIX + n: a for n, a in zip(self.names, audio)}}
        return torch.softmax(self.model.fuse(faces, frame_mask, batch) / self.temperature, 1)


def _export(module: nn.Module, inputs: dict[str, torch.Tensor], path: Path) -> None:
    """Trace ``module`` (eval mode) to ``path``; every input and the output batch-dynamic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and LSTM batch notes
        torch.onnx.export(module.eval(), tuple(inputs.values()), str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(inputs), output_names=["output"],
                          dynamic_axes={**{name: {0: "n"} for name in inputs}, "output": {0: "n"}})


def export_graphs(video: VideoEmotionNet, audio: AudioEmotionNet, face: FaceEmotionNet | FaceEnsemble,
                  audio_shapes: dict[str, tuple[int, ...]], crop_size: int, frames: int, folder: Path,
                  temperatures: dict[str, float]) -> None:
    """face.onnx, audio.onnx, video_face.onnx and video_fusion.onnx (fp32) in ``folder``; the
    probability graphs divide their logits by the model's calibration temperature (``temperatures``
    by model name, from the checkpoints' meta)."""
    crops = torch.zeros((2, crop_size, crop_size, 3), dtype=torch.uint8)
    landmarks = torch.zeros((2, LANDMARK_VALUES))
    audio_inputs = {name: torch.zeros((2, *shape)) for name, shape in audio_shapes.items()}
    _export(FaceProbabilities(face, temperatures["face"]), {"crops": crops, "landmarks": landmarks}, folder / "face.onnx")
    _export(FaceEmbeddings(video.face), {"crops": crops, "landmarks": landmarks}, folder / "video_face.onnx")
    _export(AudioProbabilities(audio, list(audio_inputs), temperatures["audio"]), audio_inputs, folder / "audio.onnx")
    fusion_inputs = dict(zip(FUSION_INPUTS, (torch.zeros((2, frames, video.face.embedding_size)),
                                             torch.ones((2, frames)), torch.ones(2), torch.zeros((2, N_TEXT_FEATURES)))))
    _export(FusionProbabilities(video, list(audio_inputs), temperatures["video"]), {**fusion_inputs, **audio_inputs},
            folder / "video_fusion.onnx")


def quantise(path: Path, calibration: Iterable[dict[str, np.ndarray]]) -> None:
    """Replace the fp32 graph at ``path`` by its int8 version (QDQ, per-channel weights, activations
    calibrated on ``calibration`` feeds)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    names = {graph_input.name for graph_input in onnx.load(str(path), load_external_data=False).graph.input}

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = ({k: v for k, v in feed.items() if k in names} for feed in calibration)

        def get_next(self):
            return next(self.feeds, None)

    prepared = path.with_suffix(".prepared.onnx")
    try:
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=QUANTISED_OPS)
    finally:
        prepared.unlink(missing_ok=True)
