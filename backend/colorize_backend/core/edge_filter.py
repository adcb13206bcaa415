"""Edge-aware smoothing in linear time: the domain transform's recursive filter.

Gastal & Oliveira, "Domain Transform for Edge-Aware Image and Video Processing" (SIGGRAPH
2011): neighbouring pixels are a distance 1 + (sigma_s / sigma_r) |ΔL| apart instead of 1,
and a recursive (exponential) filter run left-right, right-left, top-down and bottom-up
over that distance smooths within regions but hardly across lightness edges. Applied to
the values of a small grid placed at their cells' centres and to a mask of those centres,
and divided (normalized convolution), it upsamples them so that they stop at the fine
grid's edges, at any resolution, in a few passes.

Lightness changes below `threshold` per pixel (soft shading, film grain) count as no
edge, so colour flows along smooth gradients as it does across a flat region.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

COLUMN_BLOCK = 64  # columns filtered together in the vertical passes (cache-friendly rows)


@njit(cache=True, parallel=True, fastmath=True)
def _horizontal(planes, distances, log_a):
    channels, height, width = planes.shape
    for y in prange(height):
        weights = np.exp(log_a * distances[y])
        for c in range(channels):
            for x in range(1, width):
                planes[c, y, x] += weights[x - 1] * (planes[c, y, x - 1] - planes[c, y, x])
            for x in range(width - 2, -1, -1):
                planes[c, y, x] += weights[x] * (planes[c, y, x + 1] - planes[c, y, x])


@njit(cache=True, parallel=True, fastmath=True)
def _vertical(planes, distances, log_a):
    channels, height, width = planes.shape
    blocks = (width + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    for block in prange(blocks):
        left, right = block * COLUMN_BLOCK, min((block + 1) * COLUMN_BLOCK, width)
        weights = np.exp(log_a * distances[:, left:right])
        for c in range(channels):
            for y in range(1, height):
                for x in range(left, right):
                    w = weights[y - 1, x - left]
                    planes[c, y, x] += w * (planes[c, y - 1, x] - planes[c, y, x])
            for y in range(height - 2, -1, -1):
                for x in range(left, right):
                    w = weights[y, x - left]
                    planes[c, y, x] += w * (planes[c, y + 1, x] - planes[c, y, x])


def _distances(lightness: np.ndarray, stretch: float, threshold: float):
    """Domain-transform distances between horizontal and vertical neighbours."""
    dx = np.abs(np.diff(lightness, axis=1))
    dy = np.abs(np.diff(lightness, axis=0))
    return tuple(
        np.ascontiguousarray(1.0 + stretch * np.maximum(d - threshold, 0.0), dtype=np.float32)
        for d in (dx, dy)
    )


def _pass_sigmas(sigma_s: float, iterations: int) -> list[float]:
    """Each pass narrower than the one before, so that together they are sigma_s wide."""
    scale = sigma_s * math.sqrt(3.0) / math.sqrt(4.0**iterations - 1.0)
    return [scale * 2.0 ** (iterations - i - 1) for i in range(iterations)]


def edge_aware_smooth(
    planes: np.ndarray,
    lightness: np.ndarray,
    sigma_s: float,
    sigma_r: float,
    threshold: float = 1.0,
    iterations: int = 3,
) -> np.ndarray:
    """planes [C, H, W] smoothed over about sigma_s pixels, stopping at lightness edges
    (lightness [H, W] in L units; an edge of a few sigma_r blocks almost everything)."""
    out = np.array(planes, dtype=np.float32, order="C", copy=True)
    dx, dy = _distances(lightness.astype(np.float32), sigma_s / sigma_r, threshold)
    for sigma in _pass_sigmas(sigma_s, iterations):
        log_a = np.float32(-math.sqrt(2.0) / sigma)
        _horizontal(out, dx, log_a)
        _vertical(out, dy, log_a)
    return out


def edge_aware_upsample(
    planes: np.ndarray, lightness: np.ndarray, sigma_r: float, reach: float = 1.5
) -> np.ndarray:
    """planes [C, h, w] brought to the grid of lightness [H, W]: each small-grid value is
    placed at its cell's centre and spread over about `reach` cells by the edge-aware
    filter (normalized convolution), so that values stop at the fine grid's edges."""
    height, width = lightness.shape
    small_h, small_w = planes.shape[1:]
    ys = ((np.arange(small_h) + 0.5) * height / small_h).astype(int)
    xs = ((np.arange(small_w) + 0.5) * width / small_w).astype(int)
    samples = np.zeros((planes.shape[0] + 1, height, width), np.float32)
    samples[:-1, ys[:, None], xs[None, :]] = planes
    samples[-1, ys[:, None], xs[None, :]] = 1.0
    sigma_s = reach * max(height / small_h, width / small_w)
    spread = edge_aware_smooth(samples, lightness, sigma_s, sigma_r)
    return spread[:-1] / np.maximum(spread[-1], 1e-12)
