"""Quantised ab space for classification colorizers (Zhang et al., ECCV 2016).

The ab plane is cut into a 10x10 grid; the bins kept are the cells that the
training photos actually populate. Training uses soft-encoded targets and
class-rebalancing weights; inference decodes with the annealed mean, which
lives inside the exported ONNX graph.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from colorize_backend.core.contract import AB_SCALE

GRID = 10.0
AB_RANGE = AB_SCALE  # the bin grid covers the range regressors squash to


def cell_index(ab: np.ndarray) -> np.ndarray:
    """Grid cell id of each [..., 2] ab value on the full 23x23 grid."""
    side = int(2 * AB_RANGE / GRID) + 1
    ij = np.clip(np.round((ab + AB_RANGE) / GRID), 0, side - 1).astype(np.int64)
    return ij[..., 0] * side + ij[..., 1]


def populated_bins(ab_samples: np.ndarray, min_count: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Centres [Q, 2] of the grid cells seen in the data and each cell's empirical probability."""
    side = int(2 * AB_RANGE / GRID) + 1
    counts = np.bincount(cell_index(ab_samples.reshape(-1, 2)), minlength=side * side)
    kept = np.flatnonzero(counts >= min_count)
    centres = np.stack([kept // side, kept % side], axis=-1) * GRID - AB_RANGE
    prior = counts[kept] / counts[kept].sum()
    return centres.astype(np.float32), prior.astype(np.float32)


def rebalancing_weights(
    centres: np.ndarray, prior: np.ndarray, lam: float = 0.5, sigma: float = 5.0
) -> np.ndarray:
    """w ∝ ((1-λ)·smoothed prior + λ/Q)^-1, normalised so that E_prior[w] = 1."""
    dist2 = ((centres[:, None] - centres[None]) ** 2).sum(-1)
    kernel = np.exp(-dist2 / (2 * sigma**2))
    smoothed = kernel @ prior
    smoothed /= smoothed.sum()
    weights = 1.0 / ((1 - lam) * smoothed + lam / len(centres))
    return (weights / (smoothed * weights).sum()).astype(np.float32)


class SoftEncoder(nn.Module):
    """Ground-truth ab → soft one-hot over the 5 nearest bins (Gaussian, σ = 5)."""

    centres: torch.Tensor

    def __init__(self, centres: torch.Tensor, neighbours: int = 5, sigma: float = 5.0):
        super().__init__()
        self.register_buffer("centres", centres)
        self.neighbours = neighbours
        self.sigma = sigma

    def forward(self, ab: torch.Tensor) -> torch.Tensor:
        n, _, h, w = ab.shape
        flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
        dist2 = torch.cdist(flat, self.centres).pow(2)
        near_d, near_i = dist2.topk(self.neighbours, dim=1, largest=False)
        weights = torch.softmax(-near_d / (2 * self.sigma**2), dim=1)
        target = torch.zeros_like(dist2).scatter_(1, near_i, weights)
        return target.reshape(n, h, w, -1).permute(0, 3, 1, 2)


class AnnealedMean(nn.Module):
    """Bin logits → ab by the annealed mean (T = 0.38): vivid yet spatially coherent."""

    centres: torch.Tensor

    def __init__(self, centres: torch.Tensor, temperature: float = 0.38):
        super().__init__()
        self.register_buffer("centres", centres)
        self.temperature = temperature

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits / self.temperature, dim=1)
        return torch.einsum("nqhw,qc->nchw", probs, self.centres)


def bin_prior(ab_samples: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Empirical probability of given bins (their grid cells) in the samples, add-one smoothed."""
    side = int(2 * AB_RANGE / GRID) + 1
    counts = np.bincount(cell_index(ab_samples.reshape(-1, 2)), minlength=side * side)
    kept = counts[cell_index(centres)] + 1.0
    return (kept / kept.sum()).astype(np.float32)
