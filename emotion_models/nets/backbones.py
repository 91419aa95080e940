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
# Not torchvision's: VGG-style CNNs for small face crops, "compact_cnn_<width>" (see CompactCNN).
COMPACT_PREFIX = "compact_cnn_"
COMPACT_WIDTHS = (16, 24, 32, 48, 64)
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


class CompactCNN(nn.Module):
    """Four blocks of two (3x3 conv, batch norm, ReLU) and a 2x2 max-pool, ``width`` x (1, 2, 4, 8)
    channels, then global average pooling: (N, 3, H, W) -> (N, 8 * width).

    Built for 48x48 face crops (48 -> 24 -> 12 -> 6 -> 3): torchvision's ImageNet backbones
    shrink such a crop to 2x2 within a few layers and cost several times more per image on a CPU.
    Runs in channels-last memory format, about 1.4x faster on CPU (measured).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for multiple in (1, 2, 4, 8):
            for _ in range(2):
                layers += [nn.Conv2d(channels, width * multiple, 3, padding=1, bias=False),
                           nn.BatchNorm2d(width * multiple), nn.ReLU(inplace=True)]
                channels = width * multiple
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.contiguous(memory_format=torch.channels_last))


def backbone_names() -> tuple[str, ...]:
    """Every accepted ``backbone.name``."""
    return BACKBONES + tuple(f"{COMPACT_PREFIX}{width}" for width in COMPACT_WIDTHS)


def _build(config: BackboneConfig) -> nn.Module:
    if config.name.startswith(COMPACT_PREFIX) and config.name in backbone_names():
        if config.pretrained:
            log.warning("%s has no ImageNet weights: it trains from scratch", config.name)
        return CompactCNN(int(config.name.removeprefix(COMPACT_PREFIX)))
    if config.name not in BACKBONES:
        raise ValueError(f"unknown backbone '{config.name}'; choose one of {', '.join(backbone_names())}")
    return _strip_classifier(config.name, _load(config.name, config))


class Backbone(nn.Module):
    """A CNN without its classifier: (N, 3, H, W) -> (N, out_features)."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.net = _build(config)
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
