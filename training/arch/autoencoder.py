"""Encoder–decoder colorizer trained from scratch (the classic "auto-encoder" colorizer).

Strided 3x3 convolutions 64 → 128 → 256 → 512 down to 1/8, a dilated bottleneck
for context, and an upsampling decoder to 1/2 resolution; a tanh output scaled
to the a*b* range, trained by regression.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from colorize_backend.core.contract import AB_SCALE, centred_lightness

from training.arch.layers import conv_bn_relu


class EncoderDecoderColorizer(nn.Module):
    """L [N,1,H,W] → ab [N,2,H/2,W/2] in CIE units (H, W multiples of 8)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            conv_bn_relu(1, 64, 2),
            conv_bn_relu(64, 64),
            conv_bn_relu(64, 128, 2),
            conv_bn_relu(128, 128),
            conv_bn_relu(128, 256, 2),
            conv_bn_relu(256, 256),
            conv_bn_relu(256, 512),
        )
        self.bottleneck = nn.Sequential(
            conv_bn_relu(512, 512, dilation=2), conv_bn_relu(512, 512, dilation=2)
        )
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            conv_bn_relu(512, 128),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            conv_bn_relu(128, 64),
            nn.Conv2d(64, 2, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        x = self.encoder(centred_lightness(lightness))
        return self.decoder(self.bottleneck(x)) * AB_SCALE
