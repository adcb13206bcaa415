"""sRGB → CIE Lab (D65) in torch, so that batches are converted on the training device.

The same formulas as colorize_backend/color.py (which the backend uses in numpy); both are
checked against scikit-image in the tests.
"""

from __future__ import annotations

import torch

from colorize_backend.color import _RGB_TO_XYZ, _WHITE_D65


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] sRGB in [0, 1] → [N, 3, H, W] Lab."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = torch.as_tensor(_RGB_TO_XYZ / _WHITE_D65[:, None], dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("dc,nchw->ndhw", matrix, linear)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1
    )
