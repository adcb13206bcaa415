"""The optional second layer: what it is (an exemplar photo or painted hints) and what it says.

A mostly transparent layer holds painted colour hints; an opaque one is an exemplar photo
to borrow colours from. Its pixels are read here, in the source layer's coordinates; how
they steer the colour is guidance's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from colorize_backend.core.color import finite, rgb_to_lab, to_unit
from colorize_backend.core.contract import ReferenceMode, network_size
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.hints import Hints
from colorize_backend.core.planes import alpha_channel, as_rgb, colour_channels, resize_plane

HINT_MODE_MAX_COVERAGE = 0.5  # a reference mostly transparent → painted hints
GREY_CHROMA = 4.0  # a*b* length below which a colour reads as grey (ΔE ≈ 2 is just visible)
MIN_EXEMPLAR_SIDE = 32  # pixels; below, an exemplar shows too little to borrow colour from


def unusable(message: str) -> ColorizeError:
    return ColorizeError(ErrorCode.BAD_REQUEST, message)


@dataclass(frozen=True)
class Reference:
    """A reference layer: pixels ([H, W, C], any sample type) and its offset from the source."""

    pixels: np.ndarray
    offset: tuple[int, int] = (0, 0)  # reference origin minus source origin, in pixels

    def __post_init__(self) -> None:
        object.__setattr__(self, "pixels", finite(self.pixels))  # NaN paint is no colour

    def mode_for(self, requested: ReferenceMode) -> ReferenceMode:
        """What this layer is, as requested, or detected from its transparency."""
        if requested is not ReferenceMode.DETECT:
            return requested
        if self.pixels.shape[2] in (2, 4):
            coverage = float(np.mean(self.pixels[..., -1] > 0))
            if coverage < HINT_MODE_MAX_COVERAGE:
                return ReferenceMode.HINTS
        return ReferenceMode.EXEMPLAR

    def hints_over(self, width: int, height: int) -> Hints:
        """The painted pixels as hints in source coordinates (mapped through the offsets)."""
        pixels = self.pixels
        if pixels.shape[2] <= 2:
            raise unusable(
                "the hint layer is greyscale, so its paint carries no colour: convert the image "
                "to RGB (Image > Mode > RGB) before painting hints, then paint with colours"
            )
        alpha = alpha_channel(pixels)
        if alpha is None:
            ys, xs = np.indices(pixels.shape[:2]).reshape(2, -1)
        else:  # painted rows first: a 12 MP layer holds a few hundred painted pixels
            rows = np.flatnonzero(alpha[..., 0].max(axis=1))
            in_rows, xs = np.nonzero(alpha[rows, :, 0])
            ys = rows[in_rows]
        xs_src, ys_src = xs + self.offset[0], ys + self.offset[1]
        inside = (xs_src >= 0) & (xs_src < width) & (ys_src >= 0) & (ys_src < height)
        ys, xs, xs_src, ys_src = ys[inside], xs[inside], xs_src[inside], ys_src[inside]
        rgb = as_rgb(colour_channels(pixels)[ys, xs])
        ab = np.zeros((height, width, 2), dtype=np.float32)
        mask = np.zeros((height, width), dtype=bool)
        ab[ys_src, xs_src] = rgb_to_lab(to_unit(rgb))[:, 1:]
        mask[ys_src, xs_src] = True
        hints = Hints(ab, mask, (ys_src, xs_src))
        check_hints(hints)
        return hints

    def check_exemplar(self) -> None:
        """Refuse an exemplar that cannot lend colour: too small, or itself black-and-white."""
        height, width = self.pixels.shape[:2]
        if min(height, width) < MIN_EXEMPLAR_SIDE:
            raise unusable(
                f"the reference is only {width}x{height} pixels: an exemplar photo needs at "
                f"least {MIN_EXEMPLAR_SIDE} pixels on its short side"
            )
        rgb = to_unit(as_rgb(colour_channels(self.pixels[:: max(1, height // 256)])))
        chroma = np.hypot(*rgb_to_lab(rgb)[..., 1:].reshape(-1, 2).T)
        if float(np.percentile(chroma, 95)) < GREY_CHROMA:
            raise unusable(
                "the reference photo has no colour (it is black-and-white): choose a colour "
                "photo as the exemplar, or paint colour hints on a transparent layer"
            )

    def exemplar_lab(self, short_side: int = 256, multiple: int = 32) -> np.ndarray:
        """The exemplar photo as [h, w, 3] Lab at a working size (sides multiples)."""
        rgb = to_unit(as_rgb(colour_channels(self.pixels)))
        w, h = network_size(rgb.shape[1], rgb.shape[0], short_side, multiple)
        planes = [resize_plane(rgb[..., c], w, h) for c in range(3)]
        return rgb_to_lab(np.clip(np.stack(planes, axis=-1), 0, 1))


def check_hints(hints: Hints) -> None:
    """Refuse a hint layer that says nothing: no painted pixel over the image. (Neutral paint
    is a real hint: "this sky is overcast".)"""
    ys, _ = hints.points if hints.points is not None else np.nonzero(hints.mask)
    if len(ys) == 0:
        raise unusable(
            "the hint layer has no painted pixels over the image: paint colour dots or strokes "
            "on a transparent layer that overlaps the photo"
        )
