"""The audio emotion model: the clip's speech representation, optionally with its utterance
statistics (MFCC mean/std and prosody) beside it, through the dense head.

The representation (``audio.features.representation``) is the Whisper encoder's clip embedding,
standardised and fed to the head as it is (``whisper_encoder``, the default), or the original
system's MFCC image through a torchvision CNN whose pooled features the head sees (``mfcc_cnn``).
"""

from __future__ import annotations

import os
from functools import partial

import numpy as np
import torch
from torch import nn

from emotion_models import paths
from emotion_models.features.audio import (
    WINDOW_PREFIX,
    feature_key,
    featurise_audio,
    input_shapes,
    representation_name,
)
from emotion_models.features.audio_augment import (
    clip_of,
    featurise_augmented,
    transform_key,
)
from emotion_models.features.normalise import SpeakerNormalisedStore
from emotion_models.features.shards import FeatureStore, worker_count
from emotion_models.labels import NUM_CLASSES
from emotion_models.nets.backbones import Backbone, dense_head
from emotion_models.nets.spec import ModelSpec, standardisation
from emotion_models.params import (
    AudioAugmentConfig,
    AudioFeatureConfig,
    BackboneConfig,
    DenseHead,
    Params,
)
from emotion_models.training.data import Sample


def window_inputs(batch: dict) -> dict:
    """The audio model's inputs from a video window batch (``audio_stats`` -> ``stats`` ...)."""
    return {name[len(WINDOW_PREFIX):]: value for name, value in batch.items() if name.startswith(WINDOW_PREFIX)}


class AudioEmotionNet(nn.Module):
    """The clip's representation [+ (N, statistics) utterance statistics] -> 5 class logits;
    ``embed`` gives the head's last hidden layer.

    ``input_shape`` is (3, frames, n_mfcc) for an MFCC image (through ``backbone``, a CNN) or
    (width,) for an encoder embedding (standardised, straight into the head)."""

    def __init__(self, backbone: BackboneConfig | None, head: DenseHead, input_shape: tuple[int, ...],
                 statistics: int = 0) -> None:
        super().__init__()
        self.input_name = "mfcc" if len(input_shape) == 3 else "embedding"
        if self.input_name == "mfcc":
            channels, _, coefficients = input_shape
            normaliser_shape: tuple[int, ...] = (channels, 1, coefficients)
            if backbone is None:
                raise ValueError("an MFCC image needs a CNN backbone")
            self.backbone: nn.Module = Backbone(backbone)
            width = self.backbone.out_features
        else:
            normaliser_shape, width = input_shape, input_shape[0]
            self.backbone = nn.Identity()
        self.register_buffer("mean", torch.zeros(normaliser_shape))
        self.register_buffer("std", torch.ones(normaliser_shape))
        self.register_buffer("stats_mean", torch.zeros(statistics))
        self.register_buffer("stats_std", torch.ones(statistics))
        self.use_statistics = statistics > 0
        self.head = dense_head(width + statistics, head, NUM_CLASSES)
        self.embedding_size = head.units

    def embed(self, inputs: dict) -> torch.Tensor:
        """The head's last hidden layer for a batch of inputs (the representation and "stats")."""
        features = self.backbone((inputs[self.input_name] - self.mean) / self.std)
        if self.use_statistics:
            features = torch.cat([features, (inputs["stats"] - self.stats_mean) / self.stats_std], dim=1)
        return self.head[:-1](features)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head[-1](self.embed(batch))


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


def draw_augmented_copy(copies: dict[str, list[dict[str, np.ndarray]]]):
    """Training draw of a clip's clean features or, equally likely, one of its augmented copies'."""

    def transform(sample: Sample, rng: np.random.Generator) -> Sample:
        choices = copies.get(sample["clip_id"], [])
        pick = int(rng.integers(0, len(choices) + 1))
        return sample if pick == len(choices) else {**sample, **choices[pick]}

    return transform


AUGMENTED = "audio_augmented"  # data/features/audio_augmented/<transform>/: the augmented copies' stores


class AudioSpec(ModelSpec):
    name = "audio"
    modality = "audio"

    array_format = "parquet"

    def feature_key(self, params: Params) -> str:
        return feature_key(params.audio.features)

    def store(self, params: Params, root=None) -> FeatureStore:
        """The clip features; with ``audio.normalise.by: speaker`` read standardised over each speaker's clips."""
        return self._store(params, root or paths.features_dir(self.name), self.feature_key(params))

    def _store(self, params: Params, root, key: str) -> FeatureStore:
        config = params.audio.normalise
        if config.by == "speaker":
            return SpeakerNormalisedStore(root, key, self.array_format, config.min_clips)
        return FeatureStore(root, key, self.array_format)

    def arrays(self, params: Params) -> dict[str, tuple[int, ...]]:
        return input_shapes(params.audio.features)

    def model_config(self, params: Params) -> dict:
        return {"backbone": params.audio.backbone.model_dump(), "head": params.audio.head.model_dump(),
                "features": params.audio.features.model_dump(), "use_statistics": params.audio.use_statistics,
                "normalise": self.normalisation(params)}

    def normalisation(self, params: Params) -> dict:
        """``audio.normalise`` and, by speaker, the reference every speaker is mapped onto: scoring
        maps a video's speech windows onto it (features.normalise.normalise_windows)."""
        config = params.audio.normalise.model_dump()
        store = self.store(params)
        if isinstance(store, SpeakerNormalisedStore):
            config["reference"] = store.reference(self.arrays(params))
        return config

    def build(self, config: dict, pretrained: bool = True) -> AudioEmotionNet:
        features = AudioFeatureConfig(**config["features"])
        shapes = input_shapes(features)
        backbone = None
        if features.representation == "mfcc_cnn":
            backbone = BackboneConfig(**config["backbone"])
            backbone = backbone.model_copy(update={"pretrained": backbone.pretrained and pretrained})
        statistics = shapes["stats"][0] if config["use_statistics"] else 0
        return AudioEmotionNet(backbone, DenseHead(**config["head"]), shapes[representation_name(features)],
                               statistics)

    def featuriser(self, params: Params):
        # each worker process holds its own Whisper: share the cores between them
        threads = max(1, (os.cpu_count() or 1) // worker_count(params.audio.features.workers))
        return partial(featurise_audio, config=params.audio.features, threads=threads)

    def augmented_store(self, params: Params, transform: str) -> FeatureStore:
        """The incremental store of every clip's copy augmented by ``transform`` (audio.waveform_augment)."""
        key = transform_key(params.audio.features, params.audio.waveform_augment, transform)
        return self._store(params, paths.features_dir(AUGMENTED) / transform, key)

    def augmented_copies(self, params: Params) -> dict[str, list[dict[str, np.ndarray]]]:
        """clip_id -> its augmented copies' arrays (each transform's store, normalised as the clean one)."""
        copies: dict[str, list[dict[str, np.ndarray]]] = {}
        arrays = self.arrays(params)
        for transform in params.audio.waveform_augment.transforms:
            for table, values in self.augmented_store(params, transform).iter_shards(arrays, arrays):
                for row, copy in enumerate(table["clip_id"].to_list()):
                    copies.setdefault(clip_of(copy), []).append({n: np.asarray(v[row]) for n, v in values.items()})
        return copies

    def augmented_featuriser(self, params: Params, transform: str):
        threads = max(1, (os.cpu_count() or 1) // worker_count(params.audio.features.workers))
        return partial(featurise_augmented, config=params.audio.features, augment_config=params.audio.waveform_augment,
                       transform=transform, ir_folder=str(paths.features_dir(AUGMENTED) / "rooms"), threads=threads)

    def prepare(self, model: AudioEmotionNet, store: FeatureStore, arrays: dict, train_ids: set[str]) -> None:
        name = model.input_name
        mean, std = standardisation(store, name, arrays[name], train_ids, axes=(1,) if name == "mfcc" else ())
        model.mean.copy_(mean)
        model.std.copy_(std)
        if model.use_statistics:
            mean, std = standardisation(store, "stats", arrays["stats"], train_ids, axes=())
            model.stats_mean.copy_(mean)
            model.stats_std.copy_(std)

    def train_transform(self, params: Params, model: AudioEmotionNet):
        if model.input_name == "mfcc":
            return augment_mfcc(params.audio.augment, model.std.cpu().numpy())
        copies = self.augmented_copies(params)
        return draw_augmented_copy(copies) if copies else None  # mixup too (audio.train.mixup_alpha)
