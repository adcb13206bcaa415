"""Colorizer architectures by name; each entry says how it is trained and exported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn as nn


@dataclass(frozen=True)
class Architecture:
    name: str
    kind: str  # manifest kind: auto, hint or exemplar
    build: Callable[[int], nn.Module]  # num_bins -> network producing bin logits
    description: str


def _fusion(num_bins: int) -> nn.Module:
    from models.arch.fusion import FusionColorizer

    return FusionColorizer(num_bins)


ARCHITECTURES = {
    "fusion": Architecture(
        "fusion",
        "auto",
        _fusion,
        "Fusion CNN: scratch local encoder + pretrained EfficientNet-Lite0 features and "
        "global embedding, U-Net decoder, 10x10 ab-bin classification, annealed mean",
    ),
}
