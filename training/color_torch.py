"""sRGB <-> CIE Lab (D65) in torch, so that batches are converted on the training device and a
predicted a*b* can be turned back into the colour photo a classifier sees, with gradients.

The same formulas as colorize_backend/color.py (which the backend uses in numpy); both are
checked against scikit-image in the tests.
"""

from __future__ import annotations

import torch
from colorize_backend.core.color import RGB_TO_XYZ, WHITE_D65, XYZ_TO_RGB


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] sRGB in [0, 1] → [N, 3, H, W] Lab."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = torch.as_tensor(RGB_TO_XYZ / WHITE_D65[:, None], dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("dc,nchw->ndhw", matrix, linear)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1
    )


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] Lab → [N, 3, H, W] sRGB clipped to [0, 1], differentiable inside the gamut."""
    fy = (lab[:, 0] + 16.0) / 116.0
    f = torch.stack([fy + lab[:, 1] / 500.0, fy, fy - lab[:, 2] / 200.0], dim=1).clamp(min=0.0)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787)
    matrix = torch.as_tensor(XYZ_TO_RGB * WHITE_D65, dtype=lab.dtype, device=lab.device)
    linear = torch.einsum("dc,nchw->ndhw", matrix, xyz).clamp(min=0.0)
    srgb = torch.where(
        linear > 0.0031308, 1.055 * linear.clamp(min=1e-8) ** (1 / 2.4) - 0.055, 12.92 * linear
    )
    return srgb.clamp(0.0, 1.0)


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk (2003) colourfulness per photo of [N, 3, H, W] sRGB in [0, 1], on the
    0–255 scale of `training.metrics.colorfulness` (0 for grey, ~38 for photos)."""
    r, g, b = (rgb[:, c].flatten(1) * 255.0 for c in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False) + 1e-6)
    centre = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2 + 1e-6)
    return spread + 0.3 * centre
