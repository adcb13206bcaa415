"""Semantic exemplar colorizer: borrow colour where the exemplar shows the same kind of thing.

After Deep Exemplar-based Colorization (He et al., SIGGRAPH 2018): the photo and the
exemplar are both described by a pretrained classifier's features (EfficientNet-Lite0,
frozen, on their lightness only, so that colour plays no part in the matching). Each place
in the photo attends to the places of the exemplar with similar features and takes their
chroma. How well the best match fits, with the borrowed and the automatic colour, gives a
confidence: where nothing in the exemplar corresponds, the automatic colour is kept.

    L ─► features ─► describe ─┐
                               ├─► similarity ─► softmax/τ ─► borrowed a*b* ─┐
    ref L ─► features ─► describe ┘      │                                   ├─► c·borrowed
                                         └─► best match ─► confidence c ◄────┤   + (1-c)·auto
    auto a*b* (the automatic colorizer's) ───────────────────────────────────┘

Inputs L [N,1,H,W], ref_lab [N,3,Hr,Wr] (sides multiples of 32), auto_ab [N,2,H/4,W/4];
output ab [N,2,H/4,W/4].
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from colorize_backend.core.contract import AB_SCALE, centred_lightness

from training.arch.backbone import TAP_CHANNELS, EfficientNetLite0Features

DESCRIPTION = 64
HIDDEN = 96
STRIDES = (4, 8, 16, 32)


def matching_taps(features: EfficientNetLite0Features, lightness) -> list[torch.Tensor]:
    """The frozen backbone's four scales for a lightness batch, stride 4 pooled to 8 (what
    the network matches on; training.exemplar_cache stores exactly these)."""
    taps, _ = features(lightness)
    taps[0] = F.avg_pool2d(taps[0], 2)
    return taps


class Describe(nn.Module):
    """The backbone's four scales → one unit-length description per stride-8 position."""

    def __init__(self):
        super().__init__()
        self.scales = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(c), nn.Conv2d(c, HIDDEN, 1)) for c in TAP_CHANNELS
        )
        self.out = nn.Conv2d(HIDDEN, DESCRIPTION, 1)

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        size = taps[1].shape[2:]  # stride 8
        resized = [
            F.interpolate(scale(tap), size=size, mode="bilinear", align_corners=False)
            if tap.shape[2:] != size
            else scale(tap)
            for scale, tap in zip(self.scales, taps)
        ]
        total = torch.stack(resized).sum(dim=0)
        return F.normalize(self.out(F.relu(total)), dim=1)


class Confidence(nn.Module):
    """How much to trust the borrowed colour at each place (0: keep the automatic one)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(6, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 1, 1),
        )

    def forward(self, best, borrowed, auto, lightness) -> torch.Tensor:
        cues = torch.cat([best, borrowed / AB_SCALE, auto / AB_SCALE, lightness], dim=1)
        return torch.sigmoid(self.net(cues))


class SemanticExemplarColorizer(nn.Module):
    """(L, ref_lab, auto_ab) → ab at 1/4 resolution; see the module docstring."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        self.features = EfficientNetLite0Features(pretrained)
        self.features.requires_grad_(False)
        self.describe = Describe()
        self.log_temperature = nn.Parameter(torch.tensor(math.log(0.05)))
        self.confidence = Confidence()

    def train(self, mode: bool = True) -> SemanticExemplarColorizer:
        super().train(mode)
        self.features.eval()  # frozen, batch-norm statistics included
        return self

    def forward(self, lightness, ref_lab, auto_ab) -> torch.Tensor:
        target_taps = matching_taps(self.features, lightness)
        reference_taps = matching_taps(self.features, ref_lab[:, :1])
        ref_ab = F.avg_pool2d(ref_lab[:, 1:], 8)
        return self.from_features(
            target_taps, reference_taps, ref_ab, auto_ab, F.avg_pool2d(lightness, 4)
        )

    def from_features(self, target_taps, reference_taps, ref_ab, auto_ab, lightness4):
        """The trainable part, from the frozen backbone's outputs (stride 4 pooled to 8):
        what training runs on cached features."""
        query, keys = self.describe(target_taps), self.describe(reference_taps)
        n, _, h, w = query.shape
        similarity = torch.bmm(query.flatten(2).transpose(1, 2), keys.flatten(2))
        attention = (similarity / self.log_temperature.exp()).softmax(dim=2)
        borrowed = torch.bmm(attention, ref_ab.flatten(2).transpose(1, 2))
        borrowed = borrowed.transpose(1, 2).reshape(n, 2, h, w)
        best = similarity.max(dim=2).values.reshape(n, 1, h, w)
        auto8 = F.avg_pool2d(auto_ab, 2)
        light8 = centred_lightness(F.avg_pool2d(lightness4, 2))
        trust = self.confidence(best, borrowed, auto8, light8)
        size = auto_ab.shape[2:]
        borrowed = F.interpolate(borrowed, size=size, mode="bilinear", align_corners=False)
        trust = F.interpolate(trust, size=size, mode="bilinear", align_corners=False)
        return trust * borrowed + (1 - trust) * auto_ab
