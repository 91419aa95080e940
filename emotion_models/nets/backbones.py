"""torchvision CNN backbones as feature extractors, and the dense classification head."""

from __future__ import annotations

import logging

import torch
from torch import nn
from torchvision import models

from emotion_models.params import BackboneConfig, DenseHead

log = logging.getLogger(__name__)

# The original system's list; each name is a torchvision model builder.
BACKBONES: tuple[str, ...] = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
    "googlenet", "mobilenet_v2", "densenet121", "alexnet", "vgg16",
    "squeezenet1_0", "shufflenet_v2_x1_0", "mnasnet1_0",
)
# Smallest input side each backbone's strides and pooling accept; smaller inputs are upsampled.
# The others (ResNet family, MobileNetV2, ShuffleNet, MNASNet) take a 126x13 MFCC image as it is.
MIN_SIDE = {"googlenet": 32, "densenet121": 32, "alexnet": 64, "vgg16": 32, "squeezenet1_0": 32}


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights were asked for but could not be loaded, and training from scratch is not allowed."""


def _strip_classifier(name: str, model: nn.Module) -> nn.Module:
    if name.startswith("squeezenet"):
        model.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    elif hasattr(model, "fc"):
        model.fc = nn.Identity()
    else:
        model.classifier = nn.Identity()
    return model


def _load(name: str, config: BackboneConfig) -> nn.Module:
    extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    if not config.pretrained:
        return models.get_model(name, weights=None, **extra)
    try:
        if name == "googlenet":
            model = models.get_model(name, weights="DEFAULT")
            model.aux_logits, model.aux1, model.aux2 = False, None, None
            return model
        return models.get_model(name, weights="DEFAULT")
    except Exception as exc:  # network, hub or file errors all mean the same here
        if not config.allow_scratch:
            raise PretrainedWeightsUnavailable(
                f"ImageNet weights for {name} could not be loaded ({exc}); set allow_scratch: true "
                "to train from random initialisation") from exc
        log.warning("!!! ImageNet weights for %s could not be loaded (%s): TRAINING FROM SCRATCH !!!", name, exc)
        return models.get_model(name, weights=None, **extra)


class Backbone(nn.Module):
    """A torchvision CNN without its classifier: (N, 3, H, W) -> (N, out_features)."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        if config.name not in BACKBONES:
            raise ValueError(f"unknown backbone '{config.name}'; choose one of {', '.join(BACKBONES)}")
        self.net = _strip_classifier(config.name, _load(config.name, config))
        self.min_side = MIN_SIDE.get(config.name, 0)
        with torch.no_grad():
            self.net.eval()
            self.out_features = int(self.net(torch.zeros(1, 3, 64, 64)).shape[1])
            self.net.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height < self.min_side or width < self.min_side:
            x = nn.functional.interpolate(x, size=(max(height, self.min_side), max(width, self.min_side)),
                                          mode="bilinear", align_corners=False)
        return torch.flatten(self.net(x), 1)


def dense_head(in_features: int, config: DenseHead, num_classes: int) -> nn.Sequential:
    """``layers`` x (Linear, BatchNorm?, ReLU, Dropout) then a Linear to class logits."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(config.layers):
        layers.append(nn.Linear(width, config.units))
        if config.batch_norm:
            layers.append(nn.BatchNorm1d(config.units))
        layers.append(nn.ReLU(inplace=True))
        if config.dropout:
            layers.append(nn.Dropout(config.dropout))
        width = config.units
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
