"""The ONNX model contract (docs/models.md): kinds, input names, shapes and working size.

Every colorizer takes CIE lightness and returns CIE a*b*; what else it reads depends on
its kind. Anything a model needs beyond that (normalisation, bins, decoding) lives in its
graph, so the backend runs every model alike. The training code builds its networks and
exports against the same definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

OUTPUT = "ab"
LIGHTNESS = "L"  # every model's input: CIE L in [0, 100]
HINT_AB = "hint_ab"
HINT_MASK = "hint_mask"
REFERENCE_LAB = "ref_lab"
AB_SCALE = 110.0  # networks that regress a*b* squash them with tanh into ±AB_SCALE
LIGHTNESS_CENTRE = 50.0  # networks read lightness centred to [-1, 1]: L / 50 - 1


class ModelKind(StrEnum):
    AUTO = "auto"  # L -> ab
    HINT = "hint"  # L, hint_ab, hint_mask -> ab
    EXEMPLAR = "exemplar"  # L, ref_lab -> ab

    @property
    def inputs(self) -> tuple[str, ...]:
        return INPUTS[self]


class ReferenceMode(StrEnum):
    """How the optional second layer is read."""

    DETECT = "detect"  # decided by the layer's transparency
    EXEMPLAR = "exemplar"  # an opaque colour photo to borrow colours from
    HINTS = "hints"  # colour painted on a transparent layer

    @property
    def model_kind(self) -> ModelKind:
        """The kind of model trained for this kind of reference."""
        return {ReferenceMode.EXEMPLAR: ModelKind.EXEMPLAR, ReferenceMode.HINTS: ModelKind.HINT}[
            self
        ]


INPUTS = {
    ModelKind.AUTO: (LIGHTNESS,),
    ModelKind.HINT: (LIGHTNESS, HINT_AB, HINT_MASK),
    ModelKind.EXEMPLAR: (LIGHTNESS, REFERENCE_LAB),
}
INPUT_CHANNELS = {LIGHTNESS: 1, HINT_AB: 2, HINT_MASK: 1, REFERENCE_LAB: 3}
# An input a model may add to its kind's: the automatic colorizer's a*b* for the same L, on
# the output grid (H/4, W/4), which an exemplar model falls back on where nothing matches.
AUTO_AB = "auto_ab"
OPTIONAL_INPUTS = (AUTO_AB,)


def centred_lightness(lightness):
    """CIE L in [0, 100] → [-1, 1], as the networks read it (numpy or torch)."""
    return lightness / LIGHTNESS_CENTRE - 1.0


def kind_of_inputs(names: Iterable[str]) -> ModelKind | None:
    """The kind whose inputs are exactly these names (optional ones aside), if any."""
    wanted = set(names) - set(OPTIONAL_INPUTS)
    return next((kind for kind in ModelKind if set(kind.inputs) == wanted), None)


MAX_ASPECT = 4  # the long side of the network input is at most 4 x its short side


def network_size(width: int, height: int, short_side: int, multiple: int) -> tuple[int, int]:
    """(w, h) with the short side near short_side, aspect kept, both multiples of `multiple`.

    An extreme aspect ratio (a 20000 x 50 strip) would make a huge network input; the long
    side is capped at MAX_ASPECT x short_side instead, so the input never exceeds
    MAX_ASPECT x short_side² pixels (the short side then shrinks, down to `multiple`).
    """
    scale = min(short_side / min(width, height), MAX_ASPECT * short_side / max(width, height))

    def snap(v: float) -> int:
        return max(multiple, int(round(v / multiple)) * multiple)

    return snap(width * scale), snap(height * scale)


def working_side(detail_size: int | None, model_side: int, width: int, height: int) -> int:
    """The short side the network works at: the model's own, or the user's detail size, which
    never exceeds the photo's own short side (a network larger than the photo adds cost, up
    to gigabytes, and no detail)."""
    if detail_size is None:
        return model_side
    return min(detail_size, max(model_side, min(width, height)))


def network_pixels(side: int, width: int, height: int) -> int:
    """About how many pixels the network sees at a working side (aspect capped as in
    network_size)."""
    aspect = min(max(width, height) / max(min(width, height), 1), MAX_ASPECT)
    return int(side * side * aspect)


def example_inputs(
    kind: ModelKind,
    height: int,
    width: int,
    lightness: float = 50.0,
    optional: Iterable[str] = (),
) -> dict:
    """Inputs of a kind's contract (and the optional ones named): flat lightness, no hints,
    a grey reference, no automatic colour."""
    import numpy as np  # only here: the contract's names load without numpy (fast --help)

    inputs = {}
    for name in kind.inputs:
        shape = (1, INPUT_CHANNELS[name], height, width)
        inputs[name] = np.zeros(shape, np.float32)
    inputs[LIGHTNESS][:] = lightness
    if REFERENCE_LAB in inputs:
        inputs[REFERENCE_LAB][:, 0] = lightness
    if AUTO_AB in optional:
        inputs[AUTO_AB] = np.zeros((1, 2, height // 4, width // 4), np.float32)
    return inputs
