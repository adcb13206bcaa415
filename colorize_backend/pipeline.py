"""Pre- and post-processing around the network.

The network sees only a small lightness image; the result is full resolution
because the predicted chroma is upsampled and joined with the source's own
full-resolution lightness. Work is done in horizontal bands so that memory
beyond the input and output buffers stays constant for large photos.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from colorize_backend.color import lab_to_u8, lightness_from_u8

BAND_ROWS = 256


def network_size(width: int, height: int, short_side: int, multiple: int) -> tuple[int, int]:
    """(w, h) with the short side near short_side, aspect kept, both multiples of `multiple`."""
    scale = short_side / min(width, height)

    def snap(v: float) -> int:
        return max(multiple, int(round(v / multiple)) * multiple)

    return snap(width * scale), snap(height * scale)


def colour_channels(pixels: np.ndarray) -> np.ndarray:
    """The grey or RGB part of an [H, W, C] u8 image (drops alpha)."""
    return pixels[..., :1] if pixels.shape[2] <= 2 else pixels[..., :3]


def alpha_channel(pixels: np.ndarray) -> np.ndarray | None:
    return pixels[..., -1:] if pixels.shape[2] in (2, 4) else None


def full_lightness(pixels: np.ndarray) -> np.ndarray:
    """CIE L of the whole image, [H, W] float32, computed band by band on all cores."""
    colour = colour_channels(pixels)
    out = np.empty(pixels.shape[:2], dtype=np.float32)

    def band(top: int) -> None:
        out[top : top + BAND_ROWS] = lightness_from_u8(colour[top : top + BAND_ROWS])

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(band, range(0, pixels.shape[0], BAND_ROWS)))
    return out


def resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Antialiased bilinear resize of one float32 plane."""
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)


def network_input(lightness: np.ndarray, short_side: int, multiple: int) -> np.ndarray:
    """Full-resolution L → [1, 1, h, w] float32 at the model's working size."""
    height, width = lightness.shape
    w, h = network_size(width, height, short_side, multiple)
    return resize_plane(lightness, w, h)[None, None]


def compose(
    lightness: np.ndarray,
    ab_small: np.ndarray,
    pixels: np.ndarray,
    strength: float = 1.0,
    exact: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Upsample ab [2, h, w] to full size, join with L, gamut-clip, keep alpha; → u8.

    `exact` = (ab [H, W, 2], mask [H, W]) forces those pixels' chroma (painted hints).
    Bands are independent, so they run on all cores (numpy and Pillow release the GIL).
    """
    height, width = lightness.shape
    alpha = alpha_channel(pixels)
    out = np.empty((height, width, 4 if alpha is not None else 3), dtype=np.uint8)
    planes = [
        Image.fromarray(np.ascontiguousarray(c, dtype=np.float32), mode="F") for c in ab_small
    ]
    scale_y = ab_small.shape[1] / height

    def band(top: int) -> None:
        bottom = min(top + BAND_ROWS, height)
        box = (0.0, top * scale_y, float(ab_small.shape[2]), bottom * scale_y)
        ab = np.stack(
            [np.asarray(p.resize((width, bottom - top), Image.BILINEAR, box=box)) for p in planes],
            axis=-1,
        )
        if strength != 1.0:
            ab *= strength
        if exact is not None:
            band_mask = exact[1][top:bottom]
            ab[band_mask] = exact[0][top:bottom][band_mask]
        out[top:bottom, :, :3] = lab_to_u8(lightness[top:bottom], ab)
        if alpha is not None:
            out[top:bottom, :, 3:] = alpha[top:bottom]

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(band, range(0, height, BAND_ROWS)))
    return out
