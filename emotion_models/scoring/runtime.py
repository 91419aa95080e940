"""The trained networks as scoring runs them: ONNX Runtime graphs, or the PyTorch checkpoints.

Stage ``scoring_export`` (tasks/export.py) writes the checkpoints as ONNX graphs to
``models/scoring/``, with the checkpoints' meta in ``meta.json``:
- ``face.onnx``: face crops (N, H, W, 3) uint8 and landmarks (N, 1404) -> class probabilities;
- ``audio.onnx``: a window's audio inputs (``embedding`` or ``mfcc``, ``stats``) -> class probabilities;
- ``video_face.onnx``: crops and landmarks -> the combined model's per-frame face embeddings (its own
  fine-tuned copy of the face CNN);
- ``video_fusion.onnx``: face embeddings (N, frames, E), frame mask, audio inputs, audio mask and
  text features -> the combined model's class probabilities.
Every class probability is calibrated: the graph divides the logits by the temperature fitted on
the model's validation clips (meta ``temperature``; emotion_models.training.calibration).
The two face CNN graphs are quantised to int8 (static, calibrated on training crops) when
``scoring.quantise`` is on. Scoring (``scoring.runtime: onnx``) runs them with ONNX Runtime and
never imports torch (~2.6 s and ~0.5 GiB of the CUDA build saved per process); the evaluation
stages and ``scoring.runtime: torch`` run the checkpoints through the same interface.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

EXPORT_DIR = "scoring"  # under the model folder
META_FILE = "meta.json"
GRAPHS = ("face", "audio", "video_face", "video_fusion")
FUSION_INPUTS = ("faces", "frame_mask", "audio_mask", "text")  # then the audio inputs, by name


class Predictors(Protocol):
    """Class probabilities (and the combined model's face embeddings) from numpy inputs."""

    video_face_width: int  # length of one face embedding of the combined model

    def face(self, crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...

    def audio(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...

    def video_faces(self, crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...

    def video_fusion(self, faces: np.ndarray, frame_mask: np.ndarray, audio: dict[str, np.ndarray],
                     audio_mask: np.ndarray, text: np.ndarray) -> np.ndarray: ...


def export_dir(model_dir: str | Path) -> Path:
    return Path(model_dir) / EXPORT_DIR


def graph_files(model_dir: str | Path) -> list[Path]:
    """The exported graphs and their meta, in a fixed order."""
    folder = export_dir(model_dir)
    return [folder / f"{name}.onnx" for name in GRAPHS] + [folder / META_FILE]


class OnnxPredictors:
    """The exported graphs on ONNX Runtime's CPU provider (CUDA when onnxruntime-gpu offers it).
    One intra-op thread per call and no spinning: videos are scored on several threads at once,
    beside Whisper and frame decoding."""

    def __init__(self, model_dir: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        folder = export_dir(model_dir)
        self.sessions = {name: ort.InferenceSession(str(folder / f"{name}.onnx"), options, providers=providers)
                         for name in GRAPHS}
        self.inputs = {name: {i.name for i in session.get_inputs()} for name, session in self.sessions.items()}
        self.video_face_width = int(self.sessions["video_face"].get_outputs()[0].shape[1])

    def _run(self, graph: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        wanted = self.inputs[graph]  # the exporter drops inputs a graph does not use (landmarks)
        return self.sessions[graph].run(None, {k: v for k, v in feeds.items() if k in wanted})[0]

    def face(self, crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self._run("face", {"crops": crops, "landmarks": landmarks.astype(np.float32)})

    def audio(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self._run("audio", {k: v.astype(np.float32) for k, v in inputs.items()})

    def video_faces(self, crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self._run("video_face", {"crops": crops, "landmarks": landmarks.astype(np.float32)})

    def video_fusion(self, faces: np.ndarray, frame_mask: np.ndarray, audio: dict[str, np.ndarray],
                     audio_mask: np.ndarray, text: np.ndarray) -> np.ndarray:
        feeds = {"faces": faces.astype(np.float32), "frame_mask": frame_mask.astype(np.float32),
                 "audio_mask": audio_mask.astype(np.float32), "text": text.astype(np.float32),
                 **{k: v.astype(np.float32) for k, v in audio.items()}}
        return self._run("video_fusion", feeds)


def read_meta(model_dir: str | Path) -> dict:
    """The checkpoints' meta saved beside the graphs: {"video": ..., "audio": ..., "face": ..., "export": ...}."""
    path = export_dir(model_dir) / META_FILE
    return json.loads(path.read_text())


class TorchPredictors:
    """The checkpoints themselves (imports torch); probabilities calibrated by ``temperatures`` (by
    model name, as the exported graphs are)."""

    def __init__(self, video, audio, face, temperatures: dict[str, float] | None = None) -> None:
        self.video, self.audio_net, self.face_net = video, audio, face
        self.temperatures = {"video": 1.0, "audio": 1.0, "face": 1.0, **(temperatures or {})}
        self.video_face_width = video.face.embedding_size
        for model in (video, audio, face):
            model.eval()

    def face(self, crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            batch = {"crop": torch.from_numpy(np.ascontiguousarray(crops)),
                     "landmarks": torch.from_numpy(np.ascontiguousarray(landmarks, np.float32))}
            return torch.softmax(self.face_net(batch) / self.temperatures["face"], 1).numpy()

    def audio(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.no_grad():
            batch = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in inputs.items()}
            return torch.softmax(self.audio_net(batch) / self.temperatures["audio"], 1).numpy()

    def video_faces(self, crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.video.face.embed(torch.from_numpy(np.ascontiguousarray(crops)),
                                         torch.from_numpy(np.ascontiguousarray(landmarks, np.float32))).float().numpy()

    def video_fusion(self, faces: np.ndarray, frame_mask: np.ndarray, audio: dict[str, np.ndarray],
                     audio_mask: np.ndarray, text: np.ndarray) -> np.ndarray:
        import torch

        from emotion_models.features.audio import WINDOW_PREFIX

        def tensor(values: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(values, np.float32))

        batch = {"audio_mask": tensor(audio_mask), "text": tensor(text),
                 **{WINDOW_PREFIX + k: tensor(v) for k, v in audio.items()}}
        with torch.no_grad():
            logits = self.video.fuse(tensor(faces), tensor(frame_mask), batch)
            return torch.softmax(logits / self.temperatures["video"], 1).numpy()


def temperatures(metas: dict[str, dict]) -> dict[str, float]:
    """Each model's calibration temperature from its checkpoint meta (1: a checkpoint from before
    calibration)."""
    return {name: float(meta.get("temperature", 1.0)) for name, meta in metas.items()}
