"""Dense dual-stream colorizer with classification guidance.

A detail stream of DenseNet blocks (trained from scratch) reads the lightness at
1/2 to 1/8 resolution; a guidance stream (pretrained EfficientNet-Lite0 on the
grey photo) predicts the ImageNet class of the scene and supplies its embedding,
which is fused into the detail features before decoding ab by regression. In
training the class logits are returned too, so the loss can add the
classification term (targets from the same classifier run on the colour photo).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from colorize_backend.core.contract import AB_SCALE, centred_lightness

from training.arch.backbone import EMBEDDING_CHANNELS, EfficientNetLite0Features
from training.arch.layers import conv_bn_relu

NUM_CLASSES = 1000


class DenseBlock(nn.Module):
    """DenseNet block: every layer sees the concatenation of all earlier feature maps."""

    def __init__(self, channels: int, growth: int, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            conv_bn_relu(channels + i * growth, growth) for i in range(layers)
        )
        self.out_channels = channels + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


def _transition(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.AvgPool2d(2),
    )


class DenseDualStreamColorizer(nn.Module):
    """L [N,1,H,W] (H, W multiples of 32) → ab [N,2,H/4,W/4]; (ab, class logits) in training."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        self.stem = conv_bn_relu(1, 32, 2)
        block1 = DenseBlock(32, 16, 4)
        block2 = DenseBlock(64, 16, 4)
        block3 = DenseBlock(96, 24, 4)
        self.detail = nn.Sequential(
            block1,
            _transition(block1.out_channels, 64),
            block2,
            _transition(block2.out_channels, 96),
            block3,
        )
        self.guidance = EfficientNetLite0Features(pretrained)
        self.classify = nn.Linear(EMBEDDING_CHANNELS, NUM_CLASSES)
        self.embed = nn.Sequential(nn.Linear(EMBEDDING_CHANNELS, 128), nn.ReLU(inplace=True))
        self.fuse = nn.Sequential(
            conv_bn_relu(block3.out_channels + 128, 128), conv_bn_relu(128, 128)
        )
        self.decode = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            conv_bn_relu(128, 64),
            nn.Conv2d(64, 2, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, lightness: torch.Tensor):
        detail = self.detail(self.stem(centred_lightness(lightness)))
        _, embedding = self.guidance(lightness)
        glob = self.embed(embedding)[:, :, None, None].expand(-1, -1, *detail.shape[2:])
        ab = self.decode(self.fuse(torch.cat([detail, glob], dim=1))) * AB_SCALE
        return (ab, self.classify(embedding)) if self.training else ab
