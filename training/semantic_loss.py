"""Semantic-consistency loss: the colour a pretrained classifier expects of what it sees.

A frozen ImageNet classifier (EfficientNet-Lite0, trained on 1.28 M colour photos) looks at
the colorized crop and at the true colour crop. The colorized crop is made differentiably
from the network's bin logits: the annealed mean at the exported temperature (what users
get), upsampled to the crop and joined with its lightness, converted to sRGB. Two terms:
- class: KL(p_truth || p_colorized) of the classifier's class distributions, so colour that
  makes a strawberry unrecognisable costs (Deep Koalarization's and ChromaGAN's idea);
- features: distance of its unit-normalised intermediate maps, a perceptual loss (the role
  VGG's plays in DDColor's recipe).
Gradients flow through the frozen classifier into the bin logits only.

Both terms pull the judged colour towards what the truth's features say, and a perceptual
distance is smallest for a cautious colour: the A/B saw colourfulness fall (models/README.md).
A third term counters that as DDColor's colourfulness loss does, but one-sided against the
truth: the colorized crop's shortfall of Hasler & Süsstrunk colourfulness below the true
photo's (/100), so grey photos stay grey and colourful ones are not muted. Each photo's
shortfall may count by a factor of its own (its source's: the trainer's
--colour-shortfall-source-factor).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.bins import AnnealedMean
from training.color_torch import colourfulness, lab_to_rgb
from training.teacher import ImageNetTeacher


class SemanticTerms(NamedTuple):
    """The loss terms of one batch (unweighted; the trainer weighs them)."""

    class_kl: torch.Tensor
    feature_distance: torch.Tensor
    colour_shortfall: torch.Tensor


class SemanticConsistencyLoss(nn.Module):
    """Class KL, feature distance and colour shortfall of colorized crops against the truth."""

    def __init__(self, centres: torch.Tensor, temperature: float, variant: str = "lite0"):
        super().__init__()
        self.decode = AnnealedMean(centres, temperature)
        self.judge = ImageNetTeacher(variant)

    def colorized(self, logits: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        """sRGB [N,3,H,W] from bin logits at 1/4 resolution and the crop's lightness."""
        ab = F.interpolate(
            self.decode(logits), size=lightness.shape[2:], mode="bilinear", align_corners=False
        )
        return lab_to_rgb(torch.cat([lightness, ab], dim=1))

    def forward(
        self,
        logits: torch.Tensor,
        lightness: torch.Tensor,
        truth_rgb: torch.Tensor,
        shortfall_factors: torch.Tensor | None = None,
    ) -> SemanticTerms:
        with torch.no_grad():
            truth_logits, truth_features = self.judge.logits_and_features(truth_rgb)
            truth_colourfulness = colourfulness(truth_rgb)
        ours = self.colorized(logits, lightness)
        ours_logits, ours_features = self.judge.logits_and_features(ours)
        class_kl = F.kl_div(
            F.log_softmax(ours_logits, dim=1),
            F.log_softmax(truth_logits, dim=1),
            log_target=True,
            reduction="batchmean",
        )
        feature_distance = torch.stack(
            [
                (F.normalize(ours, dim=1) - F.normalize(truth, dim=1)).pow(2).sum(dim=1).mean()
                for ours, truth in zip(ours_features, truth_features, strict=True)
            ]
        ).mean()
        shortfall = F.relu(truth_colourfulness - colourfulness(ours))
        if shortfall_factors is not None:
            shortfall = shortfall * shortfall_factors
        return SemanticTerms(class_kl, feature_distance, shortfall.mean() / 100.0)
