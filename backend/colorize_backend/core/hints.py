"""Painted colour hints: the a*b* a user painted, where, and the same on a coarser grid.

Read from a hint layer by core.reference, spread by core.guidance, and forced exactly at
their pixels by core.planes.compose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hints:
    """Painted colour: a*b* [H, W, 2] float32 where mask [H, W] is True; `points` (rows,
    columns) lists the hinted pixels when known, so that a large mask is not searched."""

    ab: np.ndarray
    mask: np.ndarray
    points: tuple[np.ndarray, np.ndarray] | None = None

    def on_grid(self, width: int, height: int) -> Hints:
        """The hints on a coarser grid: each hinted cell takes its hints' mean a*b*."""
        full_h, full_w = self.mask.shape
        ys, xs = self.points if self.points is not None else np.nonzero(self.mask)
        cells = (ys * height // full_h) * width + (xs * width // full_w)
        counts = np.bincount(cells, minlength=width * height)
        ab = np.stack(
            [np.bincount(cells, self.ab[ys, xs, c], minlength=width * height) for c in range(2)],
            axis=-1,
        ).astype(np.float64)
        mask = counts > 0
        ab[mask] /= counts[mask, None]
        return Hints(ab.reshape(height, width, 2).astype(np.float32), mask.reshape(height, width))
