"""The colorizer's pipeline on a real onnxruntime session: sizes, lightness and alpha preserved."""

import numpy as np
import pytest
from colorize_backend.core.color import lightness_from_u8
from colorize_backend.core.contract import network_size
from colorize_backend.core.options import ColorizeOptions

from tests.onnx_models import A_BIAS, A_GAIN


@pytest.mark.parametrize(
    "size, expected",
    [
        ((4000, 3000), (352, 256)),
        ((256, 256), (256, 256)),
        ((100, 1000), (96, 1024)),  # 1:10: the long side capped at 4 x 256
        ((31, 7), (1024, 224)),
        ((20000, 50), (1024, 32)),  # a thin strip: a bounded input, never 102400 x 256
        ((100000, 10), (1024, 32)),
    ],
)
def test_network_size_keeps_aspect_and_multiple_and_is_bounded(size, expected):
    assert network_size(*size, 256, 32) == expected


def _lightness_error(source, result):
    ls, lr = lightness_from_u8(source), lightness_from_u8(result[..., :3])
    unclipped = (result[..., :3] > 0).all(-1) & (result[..., :3] < 255).all(-1)
    return float(np.abs(ls - lr)[unclipped].mean())


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_colorize_keeps_size_lightness_and_alpha(colorizer, photo, channels):
    grey = photo[..., :1]
    source = {
        1: grey,
        2: np.concatenate([grey, grey // 2], 2),
        3: np.repeat(grey, 3, 2),
        4: np.concatenate([np.repeat(grey, 3, 2), 255 - grey], 2),
    }[channels]
    result = colorizer.colorize(source).pixels
    assert result.shape == source.shape[:2] + (4 if channels in (2, 4) else 3,)
    assert _lightness_error(source[..., :1] if channels < 3 else source[..., :3], result) < 1.0
    if channels in (2, 4):
        np.testing.assert_array_equal(result[..., 3], source[..., -1])


def test_chroma_comes_from_the_network(colorizer):
    flat = np.full((64, 64, 1), 119, np.uint8)  # L = 50
    result = colorizer.colorize(flat).pixels
    from colorize_backend.core.color import rgb_to_lab

    a = rgb_to_lab(result.astype(np.float32) / 255)[..., 1]
    assert abs(float(a.mean()) - (A_GAIN * 50 + A_BIAS)) < 1.0


def test_saturation_zero_gives_grey(colorizer, photo):
    result = colorizer.colorize(photo, ColorizeOptions(saturation=0.0)).pixels.astype(int)
    assert np.abs(result[..., 0] - result[..., 1]).max() <= 1


@pytest.mark.parametrize("shape, dtype", [((4, 4, 3), np.float64), ((4, 4, 5), np.uint8),
                                          ((4, 4), np.uint8), ((4, 4, 3), np.int16)])  # fmt: skip
def test_rejects_what_is_not_an_image(colorizer, shape, dtype):
    with pytest.raises(ValueError):
        colorizer.colorize(np.zeros(shape, dtype))


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_high_bit_depth_keeps_its_lightness(colorizer, dtype):
    """A 16-bit (or float) grey ramp comes back at its own precision, lightness kept."""
    from colorize_backend.core.color import lightness_of

    ramp = np.linspace(0.02, 0.98, 256 * 192, dtype=np.float64).reshape(192, 256, 1)
    pixels = np.round(ramp * 65535).astype(np.uint16) if dtype == np.uint16 else ramp.astype(dtype)
    result = colorizer.colorize(pixels).pixels
    assert result.dtype == dtype and result.shape == (192, 256, 3)
    top = 65535 if dtype == np.uint16 else 1.0
    unclipped = (result > 0).all(-1) & (result < top * (1 - 1e-5)).all(-1)
    delta = np.abs(lightness_of(pixels) - lightness_of(result))[unclipped]
    assert unclipped.mean() > 0.5 and delta.mean() < 0.05
