"""Compiled (numba) full-resolution stages for 8-bit images: one pass per pixel.

numpy needed a dozen passes over a 12 MP image to join lightness and chroma (each
intermediate a full-size float array), and those passes, not memory bandwidth, were the
cost. Here each output pixel is computed in one go — lightness from the source pixel,
chroma interpolated from the network's small a*b*, Lab → linear RGB, gamut clip, sRGB
gamma, alpha — on all cores, writing straight into the result buffer, with no full-size
temporaries. The same tables as colorize_backend.core.color are used, so the result matches
the numpy path to within one level (tests/test_kernels.py).

The lightness the network sees is computed the same way and reduced to the network's size
by area averaging on the fly (no full-resolution lightness array, no second resize).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from colorize_backend.core import color

_TO_RGB = np.ascontiguousarray((color.XYZ_TO_RGB * color.WHITE_D65).astype(np.float32))
_L_OF_GREY = color.L_OF_GREY.astype(np.float32)
_Y_OF_CHANNEL = np.ascontiguousarray(color.Y_OF_CHANNEL, dtype=np.float32)
_L_OF_Y = color.L_OF_Y.astype(np.float32)
_GAMMA = color.GAMMA_LUT
_GAMMA_STEPS = color.GAMMA_STEPS
_Y_STEPS = color.Y_STEPS


@njit(inline="always")
def _lightness(pixels, y, x, l_of_grey, y_of_channel, l_of_y):
    if pixels.shape[2] <= 2:
        return l_of_grey[pixels[y, x, 0]]
    luminance = (
        y_of_channel[0, pixels[y, x, 0]]
        + y_of_channel[1, pixels[y, x, 1]]
        + y_of_channel[2, pixels[y, x, 2]]
    )
    position = min(luminance, 1.0) * _Y_STEPS  # from tables: always finite
    index = min(int(position), _Y_STEPS - 1)
    low = l_of_y[index]
    return low + (position - index) * (l_of_y[index + 1] - low)


@njit(inline="always")
def _f_inverse(f):
    f = max(f, np.float32(0.0))
    return (
        f * f * f
        if f > np.float32(0.2068966)
        else (f - np.float32(16.0 / 116.0)) / np.float32(7.787)
    )


@njit(inline="always")
def _table_index(value, steps):
    """value in [0, 1] → an index into a table of steps + 1 entries; any float, NaN and
    infinities included, lands inside the table (numba does not check bounds)."""
    if not value > np.float32(0.0):  # NaN fails every comparison: it lands on 0
        return 0
    if value >= np.float32(1.0):
        return int(steps)
    return int(value * steps + np.float32(0.5))


# fastmath without its "no NaN / no Inf" assumptions: _table_index's checks must stay.
SAFE_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, parallel=True, fastmath=SAFE_FASTMATH)
def _compose_u8(pixels, ab, chroma_gain, hint_ab, hint_mask, out, tables):
    l_of_grey, y_of_channel, l_of_y, gamma, to_rgb = tables
    height, width, channels = pixels.shape
    small_h, small_w = ab.shape[1], ab.shape[2]
    has_hints = hint_mask.shape[0] == height
    x0 = np.empty(width, np.int64)
    x1 = np.empty(width, np.int64)
    wx = np.empty(width, np.float32)
    for x in range(width):  # centre-aligned bilinear, clamped at the edges (as Pillow)
        fx = min(max((x + 0.5) * small_w / width - 0.5, 0.0), small_w - 1.0)
        x0[x] = int(fx)
        x1[x] = min(x0[x] + 1, small_w - 1)
        wx[x] = fx - x0[x]
    steps = np.float32(_GAMMA_STEPS)
    for y in prange(height):
        fy = min(max((y + 0.5) * small_h / height - 0.5, 0.0), small_h - 1.0)
        y0 = int(fy)
        y1 = min(y0 + 1, small_h - 1)
        wy = np.float32(fy - y0)
        row = np.empty((2, small_w), np.float32)  # the small grid, interpolated to this row
        for c in range(2):
            for j in range(small_w):
                row[c, j] = (ab[c, y0, j] + wy * (ab[c, y1, j] - ab[c, y0, j])) * chroma_gain
        for x in range(width):
            i0, i1, w = x0[x], x1[x], wx[x]
            a = row[0, i0] + w * (row[0, i1] - row[0, i0])
            b = row[1, i0] + w * (row[1, i1] - row[1, i0])
            if has_hints and hint_mask[y, x]:
                a = hint_ab[y, x, 0]
                b = hint_ab[y, x, 1]
            lightness = _lightness(pixels, y, x, l_of_grey, y_of_channel, l_of_y)
            fl = (lightness + np.float32(16.0)) / np.float32(116.0)
            xn = _f_inverse(fl + a / np.float32(500.0))
            yn = _f_inverse(fl)
            zn = _f_inverse(fl - b / np.float32(200.0))
            for c in range(3):
                linear = to_rgb[c, 0] * xn + to_rgb[c, 1] * yn + to_rgb[c, 2] * zn
                out[y, x, c] = gamma[_table_index(linear, steps)]
            if out.shape[2] == 4:
                out[y, x, 3] = pixels[y, x, channels - 1]


@njit(cache=True, parallel=True)
def _area_lightness(pixels, out, tables):
    l_of_grey, y_of_channel, l_of_y = tables
    height, width = pixels.shape[0], pixels.shape[1]
    out_h, out_w = out.shape
    scale_y, scale_x = height / out_h, width / out_w  # both >= 1: a reduction
    column = np.empty(width, np.int64)  # the output column a source column starts in
    share = np.empty(width, np.float32)  # the part of it inside that column (rest: the next)
    for x in range(width):
        left, right = x / scale_x, (x + 1) / scale_x
        column[x] = min(int(left), out_w - 1)
        share[x] = min((column[x] + 1 - left) / (right - left), 1.0)
    for oy in prange(out_h):
        top, bottom = oy * scale_y, (oy + 1) * scale_y
        sums = np.zeros(out_w + 1, np.float32)
        for y in range(int(top), min(math.ceil(bottom), height)):
            row_weight = min(y + 1.0, bottom) - max(float(y), top)
            for x in range(width):
                weighted = row_weight * _lightness(pixels, y, x, l_of_grey, y_of_channel, l_of_y)
                sums[column[x]] += weighted * share[x]
                sums[column[x] + 1] += weighted * (np.float32(1.0) - share[x])
        for ox in range(out_w):
            out[oy, ox] = sums[ox] / (scale_x * scale_y)


def compose_u8(
    pixels: np.ndarray,
    ab: np.ndarray,
    chroma_gain: float,
    hint_ab: np.ndarray | None,
    hint_mask: np.ndarray | None,
    out: np.ndarray,
) -> None:
    """Fill out [H, W, 3 or 4] u8 with the colour of u8 pixels [H, W, C] and chroma ab
    [2, h, w] scaled by chroma_gain; hinted pixels (mask [H, W]) take their hint's a*b*
    exactly."""
    if hint_mask is None or hint_ab is None:
        hint_ab, hint_mask = np.zeros((0, 0, 2), np.float32), np.zeros((0, 0), np.bool_)
    tables = (_L_OF_GREY, _Y_OF_CHANNEL, _L_OF_Y, _GAMMA, _TO_RGB)
    _compose_u8(
        pixels, np.ascontiguousarray(ab, dtype=np.float32), np.float32(chroma_gain),
        hint_ab, hint_mask, out, tables,
    )  # fmt: skip


def area_lightness(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """CIE L of u8 pixels [H, W, C] reduced to [height, width] by area averaging (each output
    pixel the mean over its footprint, partial source pixels weighted by their share: OpenCV's
    INTER_AREA), in one pass with no full-resolution lightness array. Reductions only."""
    if height > pixels.shape[0] or width > pixels.shape[1]:
        raise ValueError("area_lightness reduces; the target is larger than the image")
    out = np.empty((height, width), np.float32)
    _area_lightness(pixels, out, (_L_OF_GREY, _Y_OF_CHANNEL, _L_OF_Y))
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) before the first request needs the kernels."""
    for channels in (1, 2, 3, 4):
        pixels = np.zeros((8, 8, channels), np.uint8)
        out = np.empty((8, 8, 4 if channels in (2, 4) else 3), np.uint8)
        compose_u8(pixels, np.zeros((2, 2, 2), np.float32), 1.0, None, None, out)
        area_lightness(pixels, 3, 3)
    hints = np.zeros((8, 8, 2), np.float32), np.zeros((8, 8), np.bool_)
    compose_u8(np.zeros((8, 8, 1), np.uint8), np.zeros((2, 2, 2), np.float32), 1.0, *hints,
               np.empty((8, 8, 3), np.uint8))  # fmt: skip
