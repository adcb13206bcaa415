"""Classification colorizer trained from scratch (after Zhang, Isola & Efros, ECCV 2016).

A plain VGG-style CNN, narrower than the paper's for CPU speed: strided convs to
1/8, dilated convolutions for context, one upsampling step, and a 1x1 head that
scores every quantised ab bin at 1/4 resolution. Class rebalancing and the
annealed mean come from training/bins.py and the exported graph.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from colorize_backend.core.contract import centred_lightness

from training.arch.layers import conv_bn_relu


class ClassificationColorizer(nn.Module):
    """L [N,1,H,W] (H, W multiples of 8) → ab-bin logits [N,Q,H/4,W/4]."""

    def __init__(self, num_bins: int):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(1, 32, 2),
            conv_bn_relu(32, 32),
            conv_bn_relu(32, 64, 2),
            conv_bn_relu(64, 64),
            conv_bn_relu(64, 128, 2),
            conv_bn_relu(128, 128),
            conv_bn_relu(128, 256, dilation=2),
            conv_bn_relu(256, 256, dilation=2),
            conv_bn_relu(256, 256, dilation=4),
            conv_bn_relu(256, 256),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            conv_bn_relu(256, 128),
            conv_bn_relu(128, 128),
        )
        self.classifier = nn.Conv2d(128, num_bins, 1)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(centred_lightness(lightness)))
