"""The face emotion model: a CNN over the face crops (EfficientNet-Lite0 with ImageNet weights, or
the compact CNN for 48x48 grey crops), optionally with the 1404 Face Mesh landmark values
concatenated to its pooled features, then the dense head. Stage face_pretrain trains it on
``face.pretrain.datasets`` first (none: the ImageNet weights are the start); face_train goes on
from there on every face corpus, class- and corpus-balanced. With ``face.members`` > 1 the model is
an ensemble of such networks, each pretrained and fine-tuned with its own seed (FaceEnsemble)."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch
from torch import nn

from emotion_models.features.face import LANDMARK_VALUES, feature_key, featurise_face
from emotion_models.features.shards import FeatureStore
from emotion_models.labels import NUM_CLASSES
from emotion_models.nets.backbones import Backbone, dense_head
from emotion_models.nets.spec import ModelSpec, standardisation
from emotion_models.params import BackboneConfig, DenseHead, Params, PretrainConfig
from emotion_models.training.augment import augment_face, face_augmentation
from emotion_models.training.data import Sample


class FaceEmotionNet(nn.Module):
    """Face crops (N, H, W, 3) uint8 [+ landmarks (N, 1404)] -> 5 class logits. ``test_time_flip``:
    outside training the output is the log of the mean of the crop's and its mirror's probabilities
    (its softmax is that mean; divided by a temperature it stays a calibrated distribution)."""

    def __init__(self, backbone: BackboneConfig, head: DenseHead, use_landmarks: bool, normalise: bool,
                 test_time_flip: bool = False) -> None:
        super().__init__()
        if test_time_flip and use_landmarks:
            raise ValueError("test-time flip needs a model without landmarks: they are not mirrored")
        self.use_landmarks, self.normalise, self.test_time_flip = use_landmarks, normalise, test_time_flip
        self.backbone = Backbone(backbone)
        mean, std = self.backbone.mean_std  # the input scaling the backbone's weights were trained with
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1))
        self.register_buffer("landmark_mean", torch.zeros(LANDMARK_VALUES))
        self.register_buffer("landmark_std", torch.ones(LANDMARK_VALUES))
        width = self.backbone.out_features + (LANDMARK_VALUES if use_landmarks else 0)
        self.head = dense_head(width, head, NUM_CLASSES)
        self.embedding_size = head.units

    def image_tensor(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> float (N, 3, H, W), scaled and (optionally) normalised as the backbone's weights expect."""
        images = crops.permute(0, 3, 1, 2).float() / 255.0
        return (images - self.pixel_mean) / self.pixel_std if self.normalise else images

    def embed_images(self, images: torch.Tensor, landmarks: torch.Tensor | None) -> torch.Tensor:
        features = self.backbone(images)
        if self.use_landmarks:
            features = torch.cat([features, (landmarks - self.landmark_mean) / self.landmark_std], dim=1)
        return self.head[:-1](features)

    def embed(self, crops: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        return self.embed_images(self.image_tensor(crops), landmarks)

    def image_logits(self, images: torch.Tensor, landmarks: torch.Tensor | None) -> torch.Tensor:
        """The logits of image tensors (``image_tensor``'s), without the mirror (Grad-CAM)."""
        return self.head[-1](self.embed_images(images, landmarks))

    def forward(self, batch: dict) -> torch.Tensor:
        if self.training or not self.test_time_flip:
            return self.head[-1](self.embed(batch["crop"], batch.get("landmarks")))
        crops = batch["crop"]
        both = self.head[-1](self.embed(torch.cat([crops, crops.flip(2)])))  # the mirror: width reversed
        return torch.logsumexp(torch.log_softmax(both, 1).reshape(2, -1, NUM_CLASSES), 0) - math.log(2)


class FaceEnsemble(nn.Module):
    """Face networks trained apart (each its own seed and pretraining): the probabilities are the mean
    of the members' (each member's own with its test-time flip), returned as their log, so a temperature
    divides them as it divides one network's logits; the embedding is the members' side by side."""

    def __init__(self, members: list[FaceEmotionNet]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.use_landmarks = members[0].use_landmarks
        self.embedding_size = sum(member.embedding_size for member in members)

    def image_tensor(self, crops: torch.Tensor) -> torch.Tensor:
        return self.members[0].image_tensor(crops)

    def embed(self, crops: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([member.embed(crops, landmarks) for member in self.members], dim=1)

    def forward(self, batch: dict) -> torch.Tensor:
        return mean_probabilities([member(batch) for member in self.members])

    def image_logits(self, images: torch.Tensor, landmarks: torch.Tensor | None) -> torch.Tensor:
        """The ensemble's output for image tensors (``image_tensor``'s), without the mirror (Grad-CAM)."""
        return mean_probabilities([member.image_logits(images, landmarks) for member in self.members])


def mean_probabilities(logits: list[torch.Tensor]) -> torch.Tensor:
    """The log of the mean of the softmax of each of ``logits``."""
    stacked = torch.stack([torch.log_softmax(member, 1) for member in logits])
    return torch.logsumexp(stacked, 0) - math.log(len(logits))


def face_transform(params: Params):
    pipeline = face_augmentation(params.face.augment)

    def transform(sample: Sample, rng: np.random.Generator) -> Sample:
        crop, landmarks = augment_face(pipeline, sample["crop"], sample["landmarks"], rng)
        return {**sample, "crop": crop, "landmarks": landmarks}

    return transform


class FaceSpec(ModelSpec):
    name = "face"
    modality = "face"

    array_format = "npy"

    def feature_key(self, params: Params) -> str:
        return feature_key(params.face.features)

    def arrays(self, params: Params) -> dict[str, tuple[int, ...]]:
        size = params.face.features.size
        return {"crop": (size, size, 3), "landmarks": (LANDMARK_VALUES,)}

    def model_config(self, params: Params) -> dict:
        return {"backbone": params.face.backbone.model_dump(), "head": params.face.head.model_dump(),
                "use_landmarks": params.face.use_landmarks and params.face.features.landmarks,
                "normalise": params.face.normalise, "test_time_flip": params.face.test_time_flip,
                "features": params.face.features.model_dump(), "members": params.face.members}

    def build(self, config: dict, pretrained: bool = True) -> FaceEmotionNet | FaceEnsemble:
        if config.get("members", 1) > 1:
            return FaceEnsemble([self.build({**config, "members": 1}, pretrained) for _ in range(config["members"])])
        backbone = BackboneConfig(**config["backbone"])
        backbone = backbone.model_copy(update={"pretrained": backbone.pretrained and pretrained})
        return FaceEmotionNet(backbone, DenseHead(**config["head"]), config["use_landmarks"], config["normalise"],
                              config.get("test_time_flip", False))

    def members(self, params: Params) -> int:
        return params.face.members

    def member_params(self, params: Params, member: int) -> Params:
        return params.model_copy(update={"seed": params.seed + member,
                                         "face": params.face.model_copy(update={"members": 1})})

    def featuriser(self, params: Params):
        return partial(featurise_face, config=params.face.features)

    def prepare(self, model: FaceEmotionNet, store: FeatureStore, arrays: dict, train_ids: set[str]) -> None:
        if model.use_landmarks:
            mean, std = standardisation(store, "landmarks", arrays["landmarks"], train_ids, axes=())
            model.landmark_mean.copy_(mean)
            model.landmark_std.copy_(std.clamp_min(1e-3))

    def pretrain_config(self, params: Params) -> PretrainConfig:
        return params.face.pretrain

    def train_transform(self, params: Params, model: nn.Module):
        return face_transform(params) if params.face.augment.enabled else None
