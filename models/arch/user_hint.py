"""User-hint colorizer (after Zhang et al., SIGGRAPH 2017): L + sparse ab hints + mask → ab.

The fusion colorizer's network with a hint encoder whose stride-4 and stride-8
features are added to its local stream, so it starts from a trained automatic
colorizer and learns to honour and propagate the hints (simulated in training
by models/hints.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from models.arch.fusion import FusionColorizer
from models.arch.layers import conv_bn_relu

AB_SCALE = 110.0


class UserHintColorizer(nn.Module):
    """(L, hint_ab [N,2,H,W], hint_mask [N,1,H,W]) → ab-bin logits [N,Q,H/4,W/4]."""

    def __init__(self, num_bins: int, pretrained: bool = True):
        super().__init__()
        self.colorizer = FusionColorizer(num_bins, pretrained)
        self.hints_s4 = nn.Sequential(conv_bn_relu(3, 24, 2), conv_bn_relu(24, 32, 2))
        self.hints_s8 = conv_bn_relu(32, 48, 2)

    def forward(
        self, lightness: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor
    ) -> torch.Tensor:
        hints4 = self.hints_s4(torch.cat([hint_ab / AB_SCALE * hint_mask, hint_mask], dim=1))
        return self.colorizer(lightness, local_extra=(hints4, self.hints_s8(hints4)))
