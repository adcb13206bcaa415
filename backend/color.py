"""sRGB <-> CIE Lab (D65) in vectorised float32 numpy.

The pipeline joins the network's chroma with the source's own lightness, so
these conversions decide what "lightness preserved" means; they follow the
same formulas as scikit-image (tested against it).
"""

from __future__ import annotations

import numpy as np

# sRGB (linear) -> XYZ, D65 white, as in IEC 61966-2-1 / scikit-image.
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float32,
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ.astype(np.float64)).astype(np.float32)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)

_EPSILON = 0.008856
_KAPPA = 7.787


def _srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def _linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.maximum(lin, 0.0)
    return np.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, lin * 12.92)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert [..., 3] sRGB in [0, 1] to [..., 3] CIE Lab (float32)."""
    lin = _srgb_to_linear(np.asarray(rgb, dtype=np.float32))
    xyz = (lin @ _RGB_TO_XYZ.T) / _WHITE_D65
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), _KAPPA * xyz + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def _lab_to_linear_rgb(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    f = np.maximum(f, 0.0)
    xyz = np.where(f > 0.2068966, f * f * f, (f - 16.0 / 116.0) / _KAPPA) * _WHITE_D65
    return xyz @ _XYZ_TO_RGB.T


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Convert [..., 3] CIE Lab to sRGB in [0, 1], clipped to the gamut."""
    rgb = _linear_to_srgb(_lab_to_linear_rgb(np.asarray(lab, dtype=np.float32)))
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def lightness_from_u8(pixels: np.ndarray) -> np.ndarray:
    """CIE L of an [H, W, C] u8 image (C = 1 grey or 3 RGB), as [H, W] float32."""
    if pixels.shape[-1] == 1:
        rgb = np.repeat(pixels, 3, axis=-1)
    else:
        rgb = pixels[..., :3]
    return luminance_to_lightness(relative_luminance(rgb))


def relative_luminance(rgb_u8: np.ndarray) -> np.ndarray:
    """CIE Y of sRGB u8 pixels; a lookup table keeps 12 MP photos fast."""
    lut = _srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0).astype(np.float32)
    lin = lut[rgb_u8]
    return lin @ _RGB_TO_XYZ[1]


def luminance_to_lightness(y: np.ndarray) -> np.ndarray:
    """CIE Y (white = 1) to CIE L in [0, 100]."""
    f = np.where(y > _EPSILON, np.cbrt(y), _KAPPA * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


# Linear light → sRGB u8 through a fine table: the gamma curve's pow() would dominate the cost
# of a 12 MP result, and 16384 steps keep the error under half a u8 level.
_GAMMA_STEPS = 16383
_GAMMA_LUT = np.round(
    _linear_to_srgb(np.linspace(0.0, 1.0, _GAMMA_STEPS + 1, dtype=np.float64)) * 255
).astype(np.uint8)


def lab_to_u8(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Join [H, W] lightness with [H, W, 2] chroma into gamut-clipped RGB u8."""
    lab = np.concatenate([lightness[..., None], ab], axis=-1, dtype=np.float32)
    linear = np.clip(_lab_to_linear_rgb(lab), 0.0, 1.0)
    return _GAMMA_LUT[(linear * _GAMMA_STEPS + 0.5).astype(np.int32)]
