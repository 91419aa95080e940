"""The audio emotion model: a torchvision CNN over MFCC images, optionally with the clip's
utterance statistics (MFCC mean/std and prosody) concatenated to its pooled features, then the
dense head."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import nn

from emotion_models.features.audio import feature_key, featurise_audio, image_shape, statistics_size
from emotion_models.features.shards import FeatureStore
from emotion_models.labels import NUM_CLASSES
from emotion_models.nets.backbones import Backbone, dense_head
from emotion_models.nets.spec import ModelSpec, standardisation
from emotion_models.params import AudioAugmentConfig, AudioFeatureConfig, BackboneConfig, DenseHead, Params
from emotion_models.training.data import Sample


class AudioEmotionNet(nn.Module):
    """(N, 3, frames, n_mfcc) MFCC images [+ (N, statistics) utterance statistics] -> 5 class logits;
    ``embed`` gives the head's last hidden layer."""

    def __init__(self, backbone: BackboneConfig, head: DenseHead, input_shape: tuple[int, int, int],
                 statistics: int = 0) -> None:
        super().__init__()
        channels, _, coefficients = input_shape
        self.register_buffer("mean", torch.zeros(channels, 1, coefficients))
        self.register_buffer("std", torch.ones(channels, 1, coefficients))
        self.register_buffer("stats_mean", torch.zeros(statistics))
        self.register_buffer("stats_std", torch.ones(statistics))
        self.use_statistics = statistics > 0
        self.backbone = Backbone(backbone)
        self.head = dense_head(self.backbone.out_features + statistics, head, NUM_CLASSES)
        self.embedding_size = head.units

    def embed(self, mfcc: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        features = self.backbone((mfcc - self.mean) / self.std)
        if self.use_statistics:
            features = torch.cat([features, (stats - self.stats_mean) / self.stats_std], dim=1)
        return self.head[:-1](features)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head[-1](self.embed(batch["mfcc"], batch.get("stats")))


def augment_mfcc(config: AudioAugmentConfig, std: np.ndarray):
    """Training-time augmentation of one MFCC image: time shift, Gaussian noise, coefficient and
    time masking (a masked coefficient row or block of frames takes the clip's mean)."""

    def transform(sample: Sample, rng: np.random.Generator) -> Sample:
        mfcc = np.array(sample["mfcc"], dtype=np.float32)
        frames = mfcc.shape[1]
        if config.time_shift:
            mfcc = np.roll(mfcc, int(rng.integers(-1, 2) * rng.random() * config.time_shift * frames), axis=1)
        if config.noise_std:
            mfcc = mfcc + rng.normal(0.0, config.noise_std, mfcc.shape).astype(np.float32) * std
        for _ in range(config.spec_mask):
            row = int(rng.integers(0, mfcc.shape[2]))
            mfcc[:, :, row] = mfcc[:, :, row].mean(axis=1, keepdims=True)
        for _ in range(config.time_mask):
            width = int(rng.integers(1, config.time_mask_frames + 1))
            start = int(rng.integers(0, max(frames - width, 0) + 1))
            mfcc[:, start:start + width, :] = mfcc.mean(axis=1, keepdims=True)
        return {**sample, "mfcc": mfcc}

    return transform


class AudioSpec(ModelSpec):
    name = "audio"
    modality = "audio"

    array_format = "parquet"

    def feature_key(self, params: Params) -> str:
        return feature_key(params.audio.features)

    def arrays(self, params: Params) -> dict[str, tuple[int, ...]]:
        return {"mfcc": image_shape(params.audio.features), "stats": (statistics_size(params.audio.features),)}

    def model_config(self, params: Params) -> dict:
        return {"backbone": params.audio.backbone.model_dump(), "head": params.audio.head.model_dump(),
                "features": params.audio.features.model_dump(), "use_statistics": params.audio.use_statistics}

    def build(self, config: dict, pretrained: bool = True) -> AudioEmotionNet:
        features = AudioFeatureConfig(**config["features"])
        backbone = BackboneConfig(**config["backbone"])
        backbone = backbone.model_copy(update={"pretrained": backbone.pretrained and pretrained})
        statistics = statistics_size(features) if config["use_statistics"] else 0
        return AudioEmotionNet(backbone, DenseHead(**config["head"]), image_shape(features), statistics)

    def featuriser(self, params: Params):
        return partial(featurise_audio, config=params.audio.features)

    def prepare(self, model: AudioEmotionNet, store: FeatureStore, arrays: dict, train_ids: set[str]) -> None:
        mean, std = standardisation(store, "mfcc", arrays["mfcc"], train_ids, axes=(1,))
        model.mean.copy_(mean)
        model.std.copy_(std)
        if model.use_statistics:
            mean, std = standardisation(store, "stats", arrays["stats"], train_ids, axes=())
            model.stats_mean.copy_(mean)
            model.stats_std.copy_(std)

    def train_transform(self, params: Params, model: AudioEmotionNet):
        return augment_mfcc(params.audio.augment, model.std.cpu().numpy())
