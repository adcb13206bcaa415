"""User-hint colorizer (after Zhang et al., SIGGRAPH 2017): L + sparse ab hints + mask → ab.

The fusion colorizer's network with a hint encoder whose stride-4 and stride-8
features are added to its local stream. The encoder reads the raw hints and a
spread version of them (normalised convolution at three window sizes: the mean
hinted ab around each place and how much hint is there), so a few dots reach
the network as dense colour evidence. Its outputs start at zero, so training
starts from the trained automatic colorizer and only learns to honour and
propagate the hints (simulated in training by models/hints.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from colorize_backend.core.contract import AB_SCALE

from training.arch.fusion import FusionColorizer
from training.arch.layers import conv_bn_relu

SPREAD_WINDOWS = (8, 16, 32)  # pixels; input sides are multiples of 32


def zero_projection(channels: int) -> nn.Conv2d:
    """1x1 convolution that starts at zero, so the new branch starts as a no-op."""
    projection = nn.Conv2d(channels, channels, 1)
    nn.init.zeros_(projection.weight)
    assert projection.bias is not None
    nn.init.zeros_(projection.bias)
    return projection


def spread_hints(hint_ab: torch.Tensor, hint_mask: torch.Tensor, size) -> torch.Tensor:
    """Per window size: mean hinted ab (scaled) and hint presence, resampled to `size`."""
    maps = []
    for window in SPREAD_WINDOWS:
        amount = F.interpolate(F.avg_pool2d(hint_mask, window), size=size, mode="bilinear")
        total = F.interpolate(F.avg_pool2d(hint_ab * hint_mask, window), size=size, mode="bilinear")
        maps += [total / (amount + 1e-6) / AB_SCALE, (amount * window * window).clamp(max=1.0)]
    return torch.cat(maps, dim=1)


class UserHintColorizer(nn.Module):
    """(L, hint_ab [N,2,H,W], hint_mask [N,1,H,W]) → ab-bin logits [N,Q,H/4,W/4]."""

    def __init__(self, num_bins: int, pretrained: bool = True):
        super().__init__()
        self.colorizer = FusionColorizer(num_bins, pretrained)
        self.raw_hints = nn.Sequential(conv_bn_relu(3, 24, 2), conv_bn_relu(24, 32, 2))
        self.spread = conv_bn_relu(3 * len(SPREAD_WINDOWS), 32)
        self.hints_s4 = conv_bn_relu(64, 32)
        self.hints_s8 = conv_bn_relu(32, 48, 2)
        self.to_local4, self.to_local8 = zero_projection(32), zero_projection(48)

    def forward(
        self, lightness: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor
    ) -> torch.Tensor:
        raw = self.raw_hints(torch.cat([hint_ab / AB_SCALE * hint_mask, hint_mask], dim=1))
        spread = self.spread(spread_hints(hint_ab, hint_mask, raw.shape[2:]))
        hints4 = self.hints_s4(torch.cat([raw, spread], dim=1))
        hints8 = self.hints_s8(hints4)
        return self.colorizer(
            lightness, local_extra=(self.to_local4(hints4), self.to_local8(hints8))
        )
