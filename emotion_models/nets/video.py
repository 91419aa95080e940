"""The combined video model: audio embedding + LSTM over per-frame face embeddings + text features.

The trained audio and face models, without their output layer, are the encoders (trainable
unless ``train_encoders`` is off). Masked frames (no face) enter the LSTM as zeros with a mask
flag beside them; a missing audio track zeroes the audio embedding. The fused vector
[audio | LSTM | 9 text features] goes through the dense head.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from emotion_models.features import audio as audio_features
from emotion_models.features import face as face_features
from emotion_models.features.media import FrameDecoding
from emotion_models.features.shards import parameters_key
from emotion_models.features.text import N_TEXT_FEATURES
from emotion_models.features.video import featurise_video, video_array_shapes
from emotion_models.labels import NUM_CLASSES
from emotion_models.nets.audio import AudioEmotionNet, AudioSpec, window_inputs
from emotion_models.nets.backbones import dense_head
from emotion_models.nets.face import FaceEmotionNet, FaceEnsemble, FaceSpec
from emotion_models.nets.spec import ModelSpec
from emotion_models.params import DenseHead, Params

MODALITIES = ("audio", "face", "text")


class VideoEmotionNet(nn.Module):
    def __init__(self, audio: AudioEmotionNet, face: FaceEmotionNet | FaceEnsemble, head: DenseHead, sequence_units: int,
                 sequence_layers: int, train_encoders: bool) -> None:
        super().__init__()
        self.audio, self.face = audio, face
        for encoder in (audio, face):
            encoder.requires_grad_(train_encoders)
        self.sequence = nn.LSTM(face.embedding_size + 1, sequence_units, sequence_layers, batch_first=True)
        fused = audio.embedding_size + sequence_units + N_TEXT_FEATURES
        self.head = dense_head(fused, head, NUM_CLASSES)
        self.use = dict.fromkeys(MODALITIES, True)  # ablations switch streams off at evaluation

    def forward(self, batch: dict) -> torch.Tensor:
        frames, mask = batch["frames"], batch["frame_mask"].float()
        n, steps = frames.shape[:2]
        if not self.use["face"]:
            mask = torch.zeros_like(mask)
        faces = self._face_embeddings(frames.flatten(0, 1), batch["landmarks"].flatten(0, 1), mask.flatten() > 0)
        return self.fuse(faces.view(n, steps, -1), mask, batch)

    def fuse(self, faces: torch.Tensor, mask: torch.Tensor, batch: dict) -> torch.Tensor:
        """Class logits from per-frame face embeddings (N, frames, E), the float frame mask (N, frames)
        and the window's audio inputs, ``audio_mask`` and ``text`` in ``batch``."""
        sequence_input = torch.cat([faces * mask.unsqueeze(-1), mask.unsqueeze(-1)], dim=-1)
        _, (hidden, _) = self.sequence(sequence_input)
        audio_mask = batch["audio_mask"].float().view(-1, 1) * float(self.use["audio"])
        audio = self.audio.embed(window_inputs(batch)) * audio_mask
        text = batch["text"] if self.use["text"] else torch.zeros_like(batch["text"])
        return self.head(torch.cat([audio, hidden[-1], text], dim=1))

    def _face_embeddings(self, crops: torch.Tensor, landmarks: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Per-frame face embeddings; at inference only frames with a face go through the CNN (the
        others are masked to zero either way), so padded and faceless frames cost nothing."""
        if self.training:
            return self.face.embed(crops, landmarks)
        embeddings = crops.new_zeros((crops.shape[0], self.face.embedding_size), dtype=torch.float32)
        if present.any():
            embeddings[present] = self.face.embed(crops[present], landmarks[present]).float()
        return embeddings


def video_feature_key(params: Params) -> str:
    relevant = {"video": params.video.features.model_dump(exclude={"shard_rows", "compose_clips"}),
                "audio": audio_features.feature_fields(params.audio.features),
                "face": face_features.feature_fields(params.face.features),
                "transcription": params.video.transcription.model_dump(), "text": params.video.text.model_dump()}
    return parameters_key(relevant)


class VideoSpec(ModelSpec):
    name = "video"
    modality = "video"

    array_format = "npy"

    def feature_key(self, params: Params) -> str:
        return video_feature_key(params)

    def arrays(self, params: Params) -> dict[str, tuple[int, ...]]:
        return video_array_shapes(params)

    def model_config(self, params: Params) -> dict:
        _, audio_meta = AudioSpec().load()
        _, face_meta = FaceSpec().load()
        return {"audio": audio_meta["config"], "face": face_meta["config"],
                "head": params.video.model.head.model_dump(), "sequence_units": params.video.model.sequence_units,
                "sequence_layers": params.video.model.sequence_layers,
                "train_encoders": params.video.model.train_encoders}

    def build(self, config: dict, pretrained: bool = True) -> VideoEmotionNet:
        audio = AudioSpec().build(config["audio"], pretrained=False)
        face = FaceSpec().build(config["face"], pretrained=False)
        if pretrained:  # start from the trained single-modality models
            audio.load_state_dict(AudioSpec().load()[0].state_dict())
            face.load_state_dict(FaceSpec().load()[0].state_dict())
        return VideoEmotionNet(audio, face, DenseHead(**config["head"]), config["sequence_units"],
                               config["sequence_layers"], config["train_encoders"])

    def featuriser(self, params: Params):
        decoding = FrameDecoding(params.scoring.max_pixels, params.scoring.skip_nonref_frames_above)
        return partial(featurise_video, params=params, decoding=decoding)
