"""sRGB <-> CIE Lab (D65) in vectorised float32 numpy.

The pipeline joins the network's chroma with the source's own lightness, so
these conversions decide what "lightness preserved" means; they follow the
same formulas as scikit-image (tested against it).
"""

from __future__ import annotations

import numpy as np

# sRGB (linear) -> XYZ, D65 white, as in IEC 61966-2-1 / scikit-image.
RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float32,
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ.astype(np.float64)).astype(np.float32)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)

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
    xyz = (lin @ RGB_TO_XYZ.T) / WHITE_D65
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), _KAPPA * xyz + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def _lab_to_linear_rgb(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    fy = (lightness + 16.0) / 116.0
    f = np.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    np.maximum(f, 0.0, out=f)
    xyz = np.where(f > 0.2068966, f * f * f, (f - 16.0 / 116.0) / _KAPPA)
    return xyz @ (XYZ_TO_RGB * WHITE_D65).T


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Convert [..., 3] CIE Lab to sRGB in [0, 1], clipped to the gamut."""
    lab = np.asarray(lab, dtype=np.float32)
    rgb = _linear_to_srgb(_lab_to_linear_rgb(lab[..., 0], lab[..., 1], lab[..., 2]))
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def luminance_to_lightness(y: np.ndarray) -> np.ndarray:
    """CIE Y (white = 1) to CIE L in [0, 100]."""
    f = np.where(y > _EPSILON, np.cbrt(y), _KAPPA * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


# u8 → lightness through tables: per-channel linear-light contributions to Y, and Y → L on a
# 65536-step grid, interpolated, so a 12 MP photo costs a few gathers, not a cbrt per pixel.
_LINEAR_U8 = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0)
Y_OF_CHANNEL = (_LINEAR_U8[None, :] * RGB_TO_XYZ[1].astype(np.float64)[:, None]).astype(np.float32)
Y_STEPS = 65535
L_OF_Y = luminance_to_lightness(np.linspace(0.0, 1.0, Y_STEPS + 1))
L_OF_GREY = luminance_to_lightness(_LINEAR_U8)


def lightness_from_u8(pixels: np.ndarray) -> np.ndarray:
    """CIE L of an [H, W, C] u8 image (C = 1 grey or 3 RGB), as [H, W] float32."""
    if pixels.shape[-1] == 1:
        return L_OF_GREY[pixels[..., 0]]
    y = Y_OF_CHANNEL[0][pixels[..., 0]]
    y += Y_OF_CHANNEL[1][pixels[..., 1]]
    y += Y_OF_CHANNEL[2][pixels[..., 2]]
    position = np.minimum(y, 1.0) * Y_STEPS
    index = np.minimum(position.astype(np.int32), Y_STEPS - 1)
    position -= index  # linear interpolation between table entries
    low = L_OF_Y[index]
    return low + position * (L_OF_Y[index + 1] - low)


# Linear light → sRGB u8 through a fine table: the gamma curve's pow() would dominate the cost
# of a 12 MP result, and 16384 steps keep the error under half a u8 level.
GAMMA_STEPS = 16383
GAMMA_LUT = np.round(
    _linear_to_srgb(np.linspace(0.0, 1.0, GAMMA_STEPS + 1, dtype=np.float64)) * 255
).astype(np.uint8)


def lab_to_u8(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Join [H, W] lightness with [H, W, 2] chroma into gamut-clipped RGB u8."""
    linear = _lab_to_linear_rgb(lightness, ab[..., 0], ab[..., 1])
    np.clip(linear, 0.0, 1.0, out=linear)
    linear *= GAMMA_STEPS
    linear += 0.5
    return GAMMA_LUT[linear.astype(np.int32)]


# ------------------------------------------------------------ 16-bit and float images
# 16-bit scans keep their lightness to a fraction of a 16-bit level: their tables are exact
# per code value (65536 entries), and Y → L is computed, not interpolated.

_LINEAR_U16 = _srgb_to_linear(np.arange(65536, dtype=np.float64) / 65535.0)
_Y_OF_CHANNEL_U16 = (_LINEAR_U16[None, :] * RGB_TO_XYZ[1].astype(np.float64)[:, None]).astype(
    np.float32
)
_L_OF_GREY_U16 = luminance_to_lightness(_LINEAR_U16)


def sample_scale(dtype: np.dtype) -> float:
    """The value of full intensity for a sample type: 255, 65535, or 1.0 for floats."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind == "u" else 1.0


def finite(pixels: np.ndarray) -> np.ndarray:
    """Float samples made safe to compute with: NaN as 0, +Inf as full intensity, -Inf as 0
    (a copy only when something had to change); integer samples as they are."""
    if pixels.dtype.kind != "f" or np.isfinite(pixels).all():
        return pixels
    return np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0)


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """Samples of any type as float32 in [0, 1] (floats are clipped)."""
    unit = pixels.astype(np.float32) / np.float32(sample_scale(pixels.dtype))
    return np.clip(unit, 0.0, 1.0) if pixels.dtype.kind == "f" else unit


def lightness_from_u16(pixels: np.ndarray) -> np.ndarray:
    """CIE L of an [H, W, C] u16 image (C = 1 grey or 3 RGB), as [H, W] float32."""
    if pixels.shape[-1] == 1:
        return _L_OF_GREY_U16[pixels[..., 0]]
    y = _Y_OF_CHANNEL_U16[0][pixels[..., 0]]
    y += _Y_OF_CHANNEL_U16[1][pixels[..., 1]]
    y += _Y_OF_CHANNEL_U16[2][pixels[..., 2]]
    return luminance_to_lightness(np.minimum(y, 1.0))


def lightness_from_float(pixels: np.ndarray) -> np.ndarray:
    """CIE L of an [H, W, C] float image in [0, 1] (sRGB-encoded), as [H, W] float32."""
    linear = _srgb_to_linear(np.clip(pixels.astype(np.float32), 0.0, 1.0))
    if pixels.shape[-1] == 1:
        y = linear[..., 0]
    else:
        y = linear @ RGB_TO_XYZ[1]
    return luminance_to_lightness(np.minimum(y, 1.0))


def lightness_of(pixels: np.ndarray) -> np.ndarray:
    """CIE L of grey or RGB pixels of any sample type (u8, u16, float)."""
    if pixels.dtype == np.uint8:
        return lightness_from_u8(pixels)
    if pixels.dtype == np.uint16:
        return lightness_from_u16(pixels)
    return lightness_from_float(pixels)


def lab_to_pixels(lightness: np.ndarray, ab: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Join lightness and chroma into gamut-clipped RGB of the given sample type."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return lab_to_u8(lightness, ab)
    linear = _lab_to_linear_rgb(lightness, ab[..., 0], ab[..., 1])
    srgb = _linear_to_srgb(np.clip(linear, 0.0, 1.0)).astype(np.float32)
    if dtype.kind == "f":
        return srgb.astype(dtype)
    return np.round(srgb * np.float32(sample_scale(dtype))).astype(dtype)
