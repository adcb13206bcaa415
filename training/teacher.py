"""A pretrained ImageNet classifier as teacher and judge: class targets for classification
guidance, top-1 for recognition, and the semantic-consistency loss's view of a colour photo."""

from __future__ import annotations

import torch
import torch.nn as nn

from training.arch.backbone import efficientnet_lite, lite_normalise

# Blocks whose outputs the feature-matching loss compares (strides 4, 8, 16, 32 in Lite0).
FEATURE_BLOCKS = {"lite0": (2, 4, 10, 15), "lite2": (3, 6, 14, 20)}


class ImageNetTeacher(nn.Module):
    """Frozen EfficientNet-Lite classifier of RGB in [0, 1]; gradients flow to its input only."""

    def __init__(self, variant: str = "lite0"):
        super().__init__()
        self.net = efficientnet_lite(variant, pretrained=True)
        self.net.eval().requires_grad_(False)
        self.feature_blocks = FEATURE_BLOCKS[variant]

    def train(self, mode: bool = True) -> ImageNetTeacher:
        return super().train(False)  # always in inference mode

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Class probabilities."""
        return self.net(lite_normalise(rgb)).softmax(dim=1)

    def logits_and_features(self, rgb: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Class logits and the maps of FEATURE_BLOCKS, differentiable with respect to rgb."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(lite_normalise(rgb))))
        features = []
        for index, block in enumerate(net._blocks):
            x = block(x)
            if index in self.feature_blocks:
                features.append(x)
        x = net._swish(net._bn1(net._conv_head(x)))
        return net._fc(net._avg_pooling(x).flatten(1)), features
