"""Model-free reference guidance: exemplar statistics transfer and edge-aware hint propagation."""

from __future__ import annotations

import numpy as np
import pytest
from colorize_backend.core.color import rgb_to_lab
from colorize_backend.core.contract import ReferenceMode
from colorize_backend.core.edge_filter import edge_aware_upsample
from colorize_backend.core.engine import Engine
from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.guidance import propagate_hints, transfer_exemplar
from colorize_backend.core.manifest import Manifest
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.core.reference import Reference

from tests.onnx_models import write_falling_back_exemplar_model, write_manifest


def test_reference_kind_is_detected_from_alpha_coverage():
    photo = np.full((10, 10, 3), 120, np.uint8)
    dots = np.zeros((10, 10, 4), np.uint8)
    dots[2, 2] = (255, 0, 0, 255)
    assert Reference(photo).mode_for(ReferenceMode.DETECT) == "exemplar"
    assert (
        Reference(np.dstack([photo, np.full((10, 10), 255, np.uint8)])).mode_for(
            ReferenceMode.DETECT
        )
        == "exemplar"
    )
    assert Reference(dots).mode_for(ReferenceMode.DETECT) == "hints"
    assert Reference(dots).mode_for(ReferenceMode.EXEMPLAR) == "exemplar"


def test_hints_map_through_layer_offsets_and_clip_outside():
    layer = np.zeros((4, 4, 4), np.uint8)
    layer[1, 1] = (255, 0, 0, 255)
    layer[3, 3] = (0, 0, 255, 255)
    hints = Reference(layer, offset=(5, 2)).hints_over(width=8, height=5)
    ab, mask = hints.ab, hints.mask
    assert mask.sum() == 1 and mask[3, 6]  # (1,1) + (5,2); (3,3)+(5,2)=(8,5) is outside
    np.testing.assert_allclose(
        ab[3, 6], rgb_to_lab(np.array([1.0, 0, 0], np.float32))[1:], atol=1e-3
    )


def test_hint_propagates_within_a_region_but_not_across_an_edge():
    lightness = np.full((40, 40), 30.0, np.float32)
    lightness[:, 20:] = 80.0  # a strong vertical edge
    prediction = np.zeros((2, 40, 40), np.float32)
    hint_ab = np.zeros((40, 40, 2), np.float32)
    mask = np.zeros((40, 40), bool)
    hint_ab[20, 5], mask[20, 5] = (60.0, 40.0), True
    ab = propagate_hints(lightness, prediction, hint_ab, mask)
    np.testing.assert_allclose(ab[:, 20, 5], (60.0, 40.0), atol=1e-4)  # honoured exactly
    assert ab[0, :, :18].mean() > 40  # spreads over its own region
    assert np.abs(ab[:, :, 22:]).max() < 5  # does not leak across the edge


def test_exemplar_transfer_moves_each_lightness_band_towards_the_exemplar():
    rng = np.random.default_rng(0)
    lightness = np.concatenate([np.full((20, 40), 25.0), np.full((20, 40), 85.0)]).astype(
        np.float32
    )
    prediction = rng.normal(0, 3, (2, 40, 40)).astype(np.float32)
    exemplar = np.zeros((40, 40, 3), np.float32)
    exemplar[:20] = (25.0, 30.0, 20.0)  # dark: warm (skin-like)
    exemplar[20:] = (85.0, -5.0, -35.0)  # bright: sky blue
    out = transfer_exemplar(lightness, prediction, exemplar)
    dark, bright = out[:, :20].reshape(2, -1).mean(1), out[:, 20:].reshape(2, -1).mean(1)
    assert dark[0] > 15 and dark[1] > 10  # faces stay warm
    assert bright[1] < -20  # the sky turns blue
    half = transfer_exemplar(lightness, prediction, exemplar, strength=0.5)
    np.testing.assert_allclose(half, 0.5 * prediction + 0.5 * out, atol=1e-4)


def test_trained_guidance_models_are_used_when_installed(tmp_path, photo):
    colorizer = Colorizer(Manifest.load(write_manifest(tmp_path, guided=True)), Engine(threads=1))
    grey = photo[..., :1]
    exemplar = np.zeros((60, 80, 3), np.uint8)
    exemplar[:] = (40, 90, 200)  # uniformly blue
    result = colorizer.colorize(
        grey, ColorizeOptions(reference_mode=ReferenceMode.EXEMPLAR), Reference(exemplar)
    )
    assert result.model == "exemplar"
    ab = rgb_to_lab(result.pixels.astype(np.float32) / 255)[..., 1:]
    want = rgb_to_lab(np.array([40, 90, 200], np.float32) / 255)[1:]
    mid = (ab[..., 0] > -100) & (rgb_to_lab(result.pixels / 255.0)[..., 0] > 30)
    assert np.abs(np.median(ab[mid], axis=0) - want).max() < 8

    dots = np.zeros(grey.shape[:2] + (4,), np.uint8)
    dots[100:110, 200:210] = (220, 30, 30, 255)
    hinted = colorizer.colorize(
        grey, ColorizeOptions(reference_mode=ReferenceMode.HINTS), Reference(dots)
    )
    assert hinted.model == "hint"
    assert hinted.pixels[105, 205, 0] > hinted.pixels[105, 205, 2] + 30
    assert colorizer.colorize(grey).model == "linear"  # no reference: the auto default


def test_a_guided_model_refuses_the_wrong_reference(tmp_path, photo):

    colorizer = Colorizer(Manifest.load(write_manifest(tmp_path, guided=True)), Engine(threads=1))
    with pytest.raises(ColorizeError, match="needs an exemplar photo"):
        colorizer.colorize(photo[..., :1], ColorizeOptions(model="exemplar"))


def test_a_hint_models_colours_are_spread_along_edges_unless_measured_alone(tmp_path):
    """The test hint model colours only the cell holding the hint; refinement spreads it."""
    manifest = Manifest.load(write_manifest(tmp_path, guided=True))
    grey = np.full((256, 256, 1), 128, np.uint8)  # one flat region
    dots = np.zeros((256, 256, 4), np.uint8)
    dots[120:124, 120:124] = (220, 30, 30, 255)
    redness = {}
    for refine in (True, False):
        colorizer = Colorizer(manifest, Engine(threads=1), refine_hints=refine)
        result = colorizer.colorize(
            grey, ColorizeOptions(reference_mode=ReferenceMode.HINTS), Reference(dots)
        )
        lab = rgb_to_lab(result.pixels.astype(np.float32) / 255)
        assert lab[122, 122, 1] > 40  # the painted pixels keep their colour either way
        redness[refine] = lab[122, 170, 1]  # three network cells to the right
    assert redness[True] > 20 and abs(redness[False]) < 2


@pytest.mark.parametrize(
    "reference, message",
    [
        (np.dstack([np.full((30, 40, 3), 128, np.uint8), np.zeros((30, 40), np.uint8)]),
         "no painted pixels over the image"),
        (np.dstack([np.full((30, 40, 1), 200, np.uint8),
                    np.pad(np.full((4, 4), 255, np.uint8), ((5, 21), (5, 31)))]),
         r"greyscale.*convert the image to RGB"),
        (np.full((300, 200, 3), (90, 91, 89), np.uint8), "no colour .*black-and-white"),
        (np.full((20, 400, 3), (200, 40, 40), np.uint8), "only 400x20 pixels"),
    ],
    ids=["empty hint layer", "greyscale hint layer", "grey exemplar", "tiny exemplar"],
)  # fmt: skip
def test_an_unusable_reference_is_refused_with_what_to_do(colorizer, photo, reference, message):
    with pytest.raises(ColorizeError, match=message) as refused:
        colorizer.colorize(photo[..., :1], reference=Reference(reference))
    assert refused.value.code == "bad_request"


def test_neutral_hints_on_an_rgb_layer_are_honoured_exactly(colorizer, photo):
    """An overcast sky painted light grey-blue is a real hint, not a mistake."""
    layer = np.zeros(photo.shape[:2] + (4,), np.uint8)
    layer[20:24, 30:34] = (193, 197, 198, 255)
    options = ColorizeOptions(reference_mode=ReferenceMode.HINTS)
    result = colorizer.colorize(photo[..., :1], options, Reference(layer)).pixels
    painted = rgb_to_lab(result[20:24, 30:34].astype(np.float32) / 255)[..., 1:]
    expected = rgb_to_lab(np.array([193, 197, 198], np.float32) / 255)[1:]
    assert np.abs(painted - expected).max() < 1.0


def test_a_toned_exemplar_and_a_few_grey_hints_among_coloured_ones_are_used(colorizer, photo):
    sepia = np.zeros((60, 80, 3), np.uint8)
    sepia[:] = np.linspace(40, 220, 80)[None, :, None] * np.array([1.0, 0.85, 0.65])
    colorizer.colorize(
        photo[..., :1], ColorizeOptions(reference_mode=ReferenceMode.EXEMPLAR), Reference(sepia)
    )
    dots = np.zeros(photo.shape[:2] + (4,), np.uint8)
    dots[10:14, 10:14] = (230, 230, 230, 255)  # white beads: grey on purpose
    dots[40:44, 40:44] = (200, 30, 30, 255)
    colorizer.colorize(
        photo[..., :1], ColorizeOptions(reference_mode=ReferenceMode.HINTS), Reference(dots)
    )


def test_hint_colour_stops_at_the_full_resolution_boundary_of_a_large_photo(colorizer):
    """The spread is solved on the network's small grid (cells of ~47 px here); the
    edge-aware upsampling puts the boundary where the photo has it, to the pixel."""
    grey = np.full((2400, 3200, 1), 90, np.uint8)
    edge = 1630  # not on a small-grid cell boundary
    grey[:, edge:] = 200
    dots = np.zeros((2400, 3200, 4), np.uint8)
    dots[1195:1205, 795:805] = (210, 40, 40, 255)
    row = slice(edge - 40, edge + 40)
    hinted = colorizer.colorize(
        grey, ColorizeOptions(reference_mode=ReferenceMode.HINTS), Reference(dots)
    ).pixels[1200, row]
    automatic = colorizer.colorize(grey).pixels[1200, row]
    change = rgb_to_lab(hinted / 255.0)[:, 1] - rgb_to_lab(automatic / 255.0)[:, 1]
    assert change[:30].min() > 15  # the dot's own region, right up to the boundary
    assert np.abs(change[44:]).max() < 1  # nothing from 4 pixels (1 hint-grid pixel) past it


def test_edge_aware_upsampling_keeps_a_flat_field_and_stops_at_an_edge():
    values = np.stack([np.full((6, 8), 5.0), np.linspace(0, 7, 8)[None].repeat(6, 0)])
    flat = np.zeros((60, 80), np.float32)
    up = edge_aware_upsample(values.astype(np.float32), flat, 4.0)
    np.testing.assert_allclose(up[0], 5.0, atol=1e-4)
    stepped = flat.copy()
    stepped[:, 43:] = 60.0
    one_side = np.zeros((1, 6, 8), np.float32)
    one_side[0, :, :4] = 10.0  # cells left of the edge
    up = edge_aware_upsample(one_side, stepped, 4.0)[0]
    assert up[:, :40].min() > 9.5 and up[:, 44:].max() < 0.5


def test_an_exemplar_model_reading_auto_ab_gets_the_automatic_colour(tmp_path, photo):
    """auto_ab is the default automatic model's a*b* for the same lightness, on the output
    grid: a model that returns it unchanged gives exactly the automatic result."""
    manifest = Manifest.load(write_manifest(tmp_path))
    colorizer = Colorizer(manifest, Engine(threads=1))
    fallback = write_falling_back_exemplar_model(tmp_path / "fallback.onnx")
    exemplar = np.zeros((60, 80, 3), np.uint8)
    exemplar[:] = (200, 40, 40)
    grey = photo[..., :1]
    guided = colorizer.colorize(grey, ColorizeOptions(model=str(fallback)), Reference(exemplar))
    assert guided.model == "fallback"
    difference = np.abs(guided.pixels.astype(int) - colorizer.colorize(grey).pixels)
    assert difference.mean() < 0.2 and difference.max() <= 3  # resampled on another grid
