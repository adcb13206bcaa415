"""Colorization quality metrics (numpy only), as reported per model in the models README."""

from __future__ import annotations

import numpy as np
from colorize_backend.core.color import rgb_to_lab


def psnr(prediction: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB between two RGB u8 images."""
    mse = np.mean((prediction.astype(np.float64) - truth.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of an RGB u8 image (0 for grey, ~38 for photos)."""
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def ab_entropy(rgb: np.ndarray, bin_size: float = 10.0) -> float:
    """Shannon entropy (bits) of the image's quantised ab histogram: how varied its colours are."""
    ab = rgb_to_lab(rgb.astype(np.float32) / 255.0)[..., 1:].reshape(-1, 2)
    cells = np.floor((ab + 128) / bin_size).astype(np.int64)
    _, counts = np.unique(cells[:, 0] * 1000 + cells[:, 1], return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def ssim(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean structural similarity over RGB (scikit-image, the reference implementation)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(prediction, truth, channel_axis=2, data_range=255))
