"""Fusion colorizer (Deep Koalarization idea, Baldassarre et al. 2017), light enough for a CPU.

A small encoder trained from scratch reads the lightness at full detail; the
pretrained EfficientNet-Lite0 supplies semantics: its pooled 1280-d embedding
is broadcast and fused at the bottleneck, and its intermediate maps feed a
U-Net-style decoder. The head predicts a distribution over quantised ab bins
(see training/bins.py) at 1/4 resolution.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from colorize_backend.core.contract import centred_lightness

from training.arch.backbone import EMBEDDING_CHANNELS, TAP_CHANNELS, EfficientNetLite0Features
from training.arch.layers import conv_bn_relu, upsample_like


class FusionColorizer(nn.Module):
    """L [N,1,H,W] (H, W multiples of 32) → ab-bin logits [N,Q,H/4,W/4]."""

    def __init__(self, num_bins: int, pretrained: bool = True):
        super().__init__()
        self.backbone = EfficientNetLite0Features(pretrained)
        self.local_s4 = nn.Sequential(conv_bn_relu(1, 24, 2), conv_bn_relu(24, 32, 2))
        self.local_s8 = conv_bn_relu(32, 48, 2)
        self.global_proj = nn.Sequential(nn.Linear(EMBEDDING_CHANNELS, 160), nn.ReLU(inplace=True))
        c4, c8, c16, c32 = TAP_CHANNELS
        self.fuse32 = conv_bn_relu(c32 + 160, 160)
        self.up16 = conv_bn_relu(160 + c16, 96)
        self.up8 = conv_bn_relu(96 + c8 + 48, 64)
        self.up4 = nn.Sequential(conv_bn_relu(64 + c4 + 32, 64), conv_bn_relu(64, 64))
        self.classifier = nn.Conv2d(64, num_bins, 1)

    def forward(
        self,
        lightness: torch.Tensor,
        local_extra: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """local_extra: stride-4 (32 ch) and stride-8 (48 ch) features added to the local
        stream, the way the user-hint network feeds its hints in."""
        (f4, f8, f16, f32), embedding = self.backbone(lightness)
        centred = centred_lightness(lightness)
        local4 = self.local_s4(centred)
        local8 = self.local_s8(local4)
        if local_extra is not None:
            local4, local8 = local4 + local_extra[0], local8 + local_extra[1]
        glob = self.global_proj(embedding)[:, :, None, None].expand(-1, -1, *f32.shape[2:])
        x = self.fuse32(torch.cat([f32, glob], dim=1))
        x = self.up16(torch.cat([upsample_like(x, f16), f16], dim=1))
        x = self.up8(torch.cat([upsample_like(x, f8), f8, local8], dim=1))
        x = self.up4(torch.cat([upsample_like(x, f4), f4, local4], dim=1))
        return self.classifier(x)
