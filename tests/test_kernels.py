"""The compiled full-resolution stages agree with the numpy path and with scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.color
from colorize_backend.core import kernels
from colorize_backend.core.hints import Hints
from colorize_backend.core.planes import compose_banded, reduce_plane


def photo(channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:97, 0:131]
    base = 128 + 100 * np.sin(x / 9.0) * np.cos(y / 7.0)
    planes = [base + rng.normal(0, 20, base.shape) for _ in range(channels)]
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def upsampled(ab: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-aligned bilinear upsampling with clamped edges, in plain numpy."""
    h, w = ab.shape[1:]
    fy = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    fx = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = fy.astype(int), fx.astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (fy - y0)[:, None], (fx - x0)[None, :]
    top = ab[:, y0][:, :, x0] * (1 - wx) + ab[:, y0][:, :, x1] * wx
    low = ab[:, y1][:, :, x0] * (1 - wx) + ab[:, y1][:, :, x1] * wx
    return (top * (1 - wy) + low * wy).transpose(1, 2, 0)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_kernel_matches_scikit_image_within_one_level(channels):
    pixels = photo(channels)
    ab = np.random.default_rng(1).normal(0, 35, (2, 13, 17)).astype(np.float32)
    out = np.empty(pixels.shape[:2] + (4 if channels in (2, 4) else 3,), np.uint8)
    kernels.compose_u8(pixels, ab, 0.8, None, None, out)
    colour = pixels[..., :1] if channels <= 2 else pixels[..., :3]
    rgb = np.repeat(colour, 3, -1) if colour.shape[-1] == 1 else colour
    lightness = skimage.color.rgb2lab(rgb)[..., 0]
    lab = np.concatenate([lightness[..., None], 0.8 * upsampled(ab, *pixels.shape[:2])], -1)
    expected = np.round(np.clip(skimage.color.lab2rgb(lab), 0, 1) * 255)
    assert np.abs(out[..., :3].astype(int) - expected).max() <= 1
    if channels in (2, 4):
        np.testing.assert_array_equal(out[..., 3], pixels[..., -1])


@pytest.mark.parametrize("channels", [1, 3])
def test_kernel_matches_the_numpy_path_with_hints(channels):
    pixels = photo(channels, seed=2)
    ab = np.random.default_rng(3).normal(0, 30, (2, 25, 33)).astype(np.float32)
    mask = np.zeros(pixels.shape[:2], bool)
    mask[10:20, 30:50] = True
    hints = Hints(np.full(pixels.shape[:2] + (2,), (40.0, -25.0), np.float32), mask)
    fused = np.empty(pixels.shape[:2] + (3,), np.uint8)
    kernels.compose_u8(pixels, ab, 1.0, hints.ab, hints.mask, fused)
    banded = np.empty_like(fused)
    compose_banded(pixels, ab, 1.0, hints, banded)
    assert np.abs(fused.astype(int) - banded.astype(int)).max() <= 1


@pytest.mark.parametrize("size", [(17, 13), (64, 48), (50, 37), (120, 90), (131, 97)])
def test_area_lightness_matches_opencv_area_resampling(size):
    """The network's lightness reduced in one pass equals OpenCV's INTER_AREA on the whole
    lightness plane (whole and fractional scale factors, edges included)."""
    cv2 = pytest.importorskip("cv2")
    pixels = photo(3, seed=4)  # 131 x 97
    width, height = size
    ours = kernels.area_lightness(pixels, width, height)
    lightness = skimage.color.rgb2lab(pixels)[..., 0].astype(np.float32)
    reference = cv2.resize(lightness, (width, height), interpolation=cv2.INTER_AREA)
    assert ours.shape == (height, width)
    np.testing.assert_allclose(ours, reference, atol=0.02)
    np.testing.assert_allclose(reduce_plane(lightness, width, height), reference, atol=0.02)


def test_area_lightness_refuses_to_enlarge():
    with pytest.raises(ValueError, match="reduces"):
        kernels.area_lightness(photo(3, seed=4), 300, 50)
