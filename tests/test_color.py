"""Hand-written colour math checked against scikit-image."""

import numpy as np
import skimage.color
from colorize_backend.core.color import lab_to_rgb, lab_to_u8, lightness_from_u8, rgb_to_lab
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

unit_rgb = arrays(np.float32, (64, 3), elements=st.floats(0, 1, width=32))


@settings(max_examples=50, deadline=None)
@given(unit_rgb)
def test_rgb_to_lab_matches_scikit_image(rgb):
    np.testing.assert_allclose(
        rgb_to_lab(rgb), skimage.color.rgb2lab(rgb.astype(np.float64)), atol=2e-3
    )


@settings(max_examples=50, deadline=None)
@given(unit_rgb)
def test_lab_to_rgb_matches_scikit_image(rgb):
    lab = skimage.color.rgb2lab(rgb.astype(np.float64))
    np.testing.assert_allclose(lab_to_rgb(lab), skimage.color.lab2rgb(lab), atol=1e-4)


def test_every_u8_grey_and_colour_lightness_matches_scikit_image():
    rng = np.random.default_rng(1)
    pixels = np.concatenate(
        [
            np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1),
            rng.integers(0, 256, (4096, 3), dtype=np.uint8),
        ]
    )[None]
    expected = skimage.color.rgb2lab(pixels)[..., 0]
    np.testing.assert_allclose(lightness_from_u8(pixels), expected, atol=1e-3)
    grey = pixels[..., :1][:, :256]
    np.testing.assert_allclose(lightness_from_u8(grey), expected[:, :256], atol=1e-3)


def test_out_of_gamut_lab_is_clipped_into_u8_range():
    lightness = np.array([[50.0, 95.0]], np.float32)
    ab = np.array([[[120.0, -120.0], [-100.0, 100.0]]], np.float32)
    out = lab_to_u8(lightness, ab)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    reference = np.clip(skimage.color.lab2rgb(np.concatenate([lightness[..., None], ab], -1)), 0, 1)
    assert np.abs(out.astype(int) - np.round(reference * 255).astype(int)).max() <= 1


def test_16_bit_and_float_lightness_matches_scikit_image():
    from colorize_backend.core.color import lightness_of

    rng = np.random.default_rng(2)
    grey = np.arange(0, 65536, 7, dtype=np.uint16)[None, :, None]
    colour = rng.integers(0, 65536, (1, 4096, 3), dtype=np.uint16)
    for pixels in (grey, colour):
        unit = pixels.astype(np.float64) / 65535
        expected = skimage.color.rgb2lab(np.repeat(unit, 3, -1) if unit.shape[-1] == 1 else unit)
        np.testing.assert_allclose(lightness_of(pixels), expected[..., 0], atol=1e-3)
        floats = unit.astype(np.float32)
        np.testing.assert_allclose(lightness_of(floats), expected[..., 0], atol=2e-3)


def test_lab_to_16_bit_matches_scikit_image_within_one_level():
    from colorize_backend.core.color import lab_to_pixels

    rng = np.random.default_rng(3)
    lab = np.stack(
        [rng.uniform(5, 95, 4096), rng.uniform(-40, 40, 4096), rng.uniform(-40, 40, 4096)], -1
    )[None].astype(np.float32)
    out = lab_to_pixels(lab[..., 0], lab[..., 1:], np.dtype(np.uint16))
    expected = np.clip(skimage.color.lab2rgb(lab.astype(np.float64)), 0, 1) * 65535
    assert out.dtype == np.uint16 and np.abs(out - np.round(expected)).max() <= 1
