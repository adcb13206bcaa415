"""Channel layout and resampling, and the full-resolution join of lightness and chroma.

The network sees only a small lightness image; the result is full resolution
because the predicted chroma is upsampled and joined with the source's own
full-resolution lightness. No full-resolution intermediate is ever built: 8-bit images
go through the compiled kernels (core.kernels, through core.compiled), 16-bit and float
ones through numpy in horizontal bands, so memory beyond the input and output buffers
stays small for large photos. While the kernels still load in the background, 8-bit
images take the numpy path too.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from colorize_backend.core import compiled
from colorize_backend.core.color import lab_to_pixels, lightness_of
from colorize_backend.core.contract import network_size
from colorize_backend.core.hints import Hints

BAND_ROWS = 256
BILINEAR = Image.Resampling.BILINEAR


def colour_channels(pixels: np.ndarray) -> np.ndarray:
    """The grey or RGB part of an [H, W, C] image (drops alpha)."""
    return pixels[..., :1] if pixels.shape[2] <= 2 else pixels[..., :3]


def alpha_channel(pixels: np.ndarray) -> np.ndarray | None:
    return pixels[..., -1:] if pixels.shape[2] in (2, 4) else None


def as_rgb(colour: np.ndarray) -> np.ndarray:
    """Grey (1 channel) or RGB (3) → RGB, along the last axis."""
    return colour if colour.shape[-1] == 3 else np.repeat(colour, 3, axis=-1)


def full_lightness(pixels: np.ndarray) -> np.ndarray:
    """CIE L of the whole image (any sample type), [H, W] float32, band by band on all cores."""
    colour = colour_channels(pixels)
    out = np.empty(pixels.shape[:2], dtype=np.float32)

    def band(top: int) -> None:
        out[top : top + BAND_ROWS] = lightness_of(colour[top : top + BAND_ROWS])

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(band, range(0, pixels.shape[0], BAND_ROWS)))
    return out


def resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Antialiased bilinear resize of one float32 plane."""
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), BILINEAR), dtype=np.float32)


def area_weights(source: int, target: int) -> np.ndarray:
    """[target, source] weights of an area reduction along one axis: each target cell's
    share of every source cell it overlaps, divided by the cell's width (rows sum to 1)."""
    edges = np.arange(target + 1) * (source / target)
    starts, ends = np.arange(source), np.arange(1, source + 1)
    overlap = np.minimum(ends[None], edges[1:, None]) - np.maximum(starts[None], edges[:-1, None])
    return (np.clip(overlap, 0.0, None) * (target / source)).astype(np.float32)


def reduce_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area reduction of one float32 plane (OpenCV's INTER_AREA; Pillow's BOX filter counts
    partly covered source pixels wholly or not at all)."""
    rows = area_weights(plane.shape[0], height)
    columns = area_weights(plane.shape[1], width)
    return np.ascontiguousarray(rows @ plane.astype(np.float32, copy=False) @ columns.T)


def resize_planes(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """resize_plane on each plane of a [C, h, w] stack."""
    return np.stack([resize_plane(p, width, height) for p in planes])


def network_input(lightness: np.ndarray, short_side: int, multiple: int) -> np.ndarray:
    """A lightness plane → [1, 1, h, w] float32 at the model's working size."""
    height, width = lightness.shape
    w, h = network_size(width, height, short_side, multiple)
    return resize_plane(lightness, w, h)[None, None]


def network_lightness(pixels: np.ndarray, short_side: int, multiple: int) -> np.ndarray:
    """The image's lightness at the model's working size, [1, 1, h, w] float32.

    Images larger than that are reduced by area averaging: 8-bit ones in one compiled pass
    (kernels.area_lightness), others (or while the kernels load) from the whole lightness
    plane (reduce_plane, the same average). Smaller images are enlarged bilinearly.
    """
    height, width = pixels.shape[:2]
    w, h = network_size(width, height, short_side, multiple)
    if h > height or w > width:
        return resize_plane(full_lightness(pixels), w, h)[None, None]
    kernels = compiled.kernels() if pixels.dtype == np.uint8 else None
    if kernels is None:
        return reduce_plane(full_lightness(pixels), w, h)[None, None]
    return kernels.area_lightness(colour_channels(pixels), w, h)[None, None]


def lightness_at(pixels: np.ndarray, short_side: int) -> np.ndarray:
    """The image's lightness [h, w] with its short side at most short_side (aspect kept)."""
    side = min(short_side, *pixels.shape[:2])
    return network_lightness(pixels, side, 1)[0, 0]


def compose(
    pixels: np.ndarray,
    ab_small: np.ndarray,
    chroma_gain: float = 1.0,
    exact: Hints | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Upsample ab [2, h, w] to full size, scale it by chroma_gain, join with the pixels' own
    lightness, gamut-clip, keep alpha; the result (written into `out` when given) has the
    pixels' sample type.

    `exact` (hints at full size) forces those pixels' chroma (painted hints).
    """
    height, width = pixels.shape[:2]
    if out is None:
        channels = 4 if alpha_channel(pixels) is not None else 3
        out = np.empty((height, width, channels), dtype=pixels.dtype)
    kernels = compiled.kernels() if pixels.dtype == np.uint8 else None
    if kernels is not None:
        hint_ab, hint_mask = (exact.ab, exact.mask) if exact is not None else (None, None)
        kernels.compose_u8(pixels, ab_small, chroma_gain, hint_ab, hint_mask, out)
    else:
        compose_banded(pixels, ab_small, chroma_gain, exact, out)
    return out


def compose_banded(
    pixels: np.ndarray,
    ab_small: np.ndarray,
    chroma_gain: float,
    exact: Hints | None,
    out: np.ndarray,
) -> None:
    """compose() in numpy, band by band on all cores (numpy and Pillow release the GIL)."""
    height, width = pixels.shape[:2]
    alpha = alpha_channel(pixels)
    colour = colour_channels(pixels)
    planes = [
        Image.fromarray(np.ascontiguousarray(c, dtype=np.float32), mode="F") for c in ab_small
    ]
    scale_y = ab_small.shape[1] / height

    def band(top: int) -> None:
        bottom = min(top + BAND_ROWS, height)
        box = (0.0, top * scale_y, float(ab_small.shape[2]), bottom * scale_y)
        ab = np.stack(
            [np.asarray(p.resize((width, bottom - top), BILINEAR, box=box)) for p in planes],
            axis=-1,
        )
        if chroma_gain != 1.0:
            ab *= chroma_gain
        if exact is not None:
            band_mask = exact.mask[top:bottom]
            ab[band_mask] = exact.ab[top:bottom][band_mask]
        lightness = lightness_of(colour[top:bottom])
        out[top:bottom, :, :3] = lab_to_pixels(lightness, ab, out.dtype)
        if alpha is not None:
            out[top:bottom, :, 3:] = alpha[top:bottom]

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(band, range(0, height, BAND_ROWS)))
