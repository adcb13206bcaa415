"""Simulated user hints for training the user-hint network (Zhang et al., SIGGRAPH 2017).

Each photo gets a random number of hints (geometric, often none, sometimes many),
each a small square patch placed at random and filled with the ground truth's
mean ab over that patch, as a user's dot of colour would be.
"""

from __future__ import annotations

import numpy as np
import torch


def simulate_hints(
    ab: torch.Tensor, rng: np.random.Generator, max_points: int = 20, mean_points: float = 8.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth ab [N,2,H,W] → (hint_ab [N,2,H,W], hint_mask [N,1,H,W])."""
    n, _, h, w = ab.shape
    hint_ab = torch.zeros_like(ab)
    mask = torch.zeros((n, 1, h, w), dtype=ab.dtype)
    for i in range(n):
        count = min(max_points, int(rng.geometric(1.0 / (mean_points + 1))) - 1)
        for _ in range(count):
            size = int(rng.integers(1, 5))
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            patch = ab[i, :, y : y + size, x : x + size]
            hint_ab[i, :, y : y + size, x : x + size] = patch.mean(dim=(1, 2), keepdim=True)
            mask[i, :, y : y + size, x : x + size] = 1.0
    return hint_ab, mask
