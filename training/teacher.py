"""Class targets for classification guidance: the pretrained EfficientNet-Lite0 on colour photos."""

from __future__ import annotations

import torch
import torch.nn as nn

from training.arch.backbone import efficientnet_lite0, lite_normalise


class ImageNetTeacher(nn.Module):
    """Frozen ImageNet classifier; returns class probabilities for RGB in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.net = efficientnet_lite0(pretrained=True)
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> ImageNetTeacher:
        return super().train(False)  # always in inference mode

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(lite_normalise(rgb)).softmax(dim=1)
