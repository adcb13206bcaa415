"""Steering the colour with a reference: one guide per reference mode.

A guide owns its mode's choices: the lightness the network reads, how the colour is
predicted or steered, and which pixels keep an exact colour; the pipeline runs any guide
through the same four steps. With a model trained for the reference (kind `exemplar` or
`hint`) the guide prepares its inputs; without one, two model-free methods steer the
automatic prediction:
- exemplar: move the prediction's chroma statistics towards the exemplar's, separately
  per lightness band (soft bands, no seams), so that a blue sky in the exemplar tints
  bright regions, not faces;
- hints: propagate painted colours along lightness edges (Levin, Lischinski & Weiss
  2004, "Colorization using Optimization"), solved as a sparse linear system on the
  network's small output grid, then brought to a fine grid (up to HINT_GRID_SIDE) by an
  edge-aware upsampling guided by the photo's own lightness, so that colour stops at the
  real boundary. The propagated quantity is the difference between hint and prediction,
  screened by a small decay term, so a hint affects its similar-looking neighbourhood and
  fades beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from colorize_backend.core.contract import (
    AUTO_AB,
    HINT_AB,
    HINT_MASK,
    LIGHTNESS,
    REFERENCE_LAB,
    ModelKind,
    ReferenceMode,
)
from colorize_backend.core.engine import Engine
from colorize_backend.core.hints import Hints
from colorize_backend.core.manifest import Manifest, ModelEntry
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.planes import (
    lightness_at,
    network_input,
    network_lightness,
    resize_plane,
    resize_planes,
)
from colorize_backend.core.reference import Reference

BANDS = 5
HINT_GRID_SIDE = 768  # short side of the grid hints spread on (thin edges survive there)
SIGMA_R = 4.0  # L units: on the fine grid, a lightness step of a few of these stops colour
HINT_SIGMA = 1.5  # L units: on the small grid, cells 4-5 L apart hardly share colour


@dataclass(frozen=True)
class Networks:
    """What a guide runs: the engine, and the catalogue for the automatic colour."""

    engine: Engine
    manifest: Manifest

    def run(self, entry: ModelEntry, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.engine.run(entry, inputs)

    def reads(self, entry: ModelEntry, name: str) -> bool:
        return name in self.engine.input_names(entry)

    def automatic(self, small: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The default auto model's ab for the lightness `small`, resampled to `shape`."""
        auto = self.manifest.resolve(None)
        ab = self.run(auto, {LIGHTNESS: network_input(small[0, 0], auto.input_size, auto.multiple)})
        return resize_planes(ab, shape[2], shape[1])


class Guide:
    """No reference: the automatic colour. Subclasses steer it with a reference."""

    model_kind: ModelKind | None = None  # the kind of model trained for this reference

    def network_lightness(self, pixels: np.ndarray, size: int, multiple: int) -> np.ndarray:
        """The lightness the network reads, [1, 1, h, w] at the working size."""
        return network_lightness(pixels, size, multiple)

    def predict(self, networks: Networks, entry: ModelEntry, small: np.ndarray) -> np.ndarray:
        """ab [2, h, w]: the model's prediction, steered by the reference if there is one."""
        return networks.run(entry, {LIGHTNESS: small})

    def exact(self) -> Hints | None:
        """Pixels whose colour the result keeps exactly (painted hints at full strength)."""
        return None


class ExemplarGuide(Guide):
    """An exemplar photo lends its colours: through an exemplar model, else by moving the
    automatic colour's statistics towards the exemplar's per lightness band."""

    model_kind = ModelKind.EXEMPLAR

    def __init__(self, reference: Reference, strength: float):
        reference.check_exemplar()
        self.reference, self.strength = reference, strength

    def predict(self, networks: Networks, entry: ModelEntry, small: np.ndarray) -> np.ndarray:
        if entry.kind is ModelKind.AUTO:
            ab = networks.run(entry, {LIGHTNESS: small})
            working_l = resize_plane(small[0, 0], ab.shape[2], ab.shape[1])
            return transfer_exemplar(working_l, ab, self.reference.exemplar_lab(), self.strength)
        ref_lab = self.reference.exemplar_lab(entry.input_size, entry.multiple).transpose(2, 0, 1)
        inputs = {LIGHTNESS: small, REFERENCE_LAB: np.ascontiguousarray(ref_lab[None])}
        automatic = None
        if networks.reads(entry, AUTO_AB):  # it falls back on the automatic colour
            height, width = small.shape[2:]
            automatic = networks.automatic(small, (2, height // 4, width // 4))
            inputs[AUTO_AB] = automatic[None]
        ab = networks.run(entry, inputs)
        if self.strength >= 1.0:
            return ab
        if automatic is None or automatic.shape != ab.shape:
            automatic = networks.automatic(small, ab.shape)
        return self.strength * ab + (1 - self.strength) * automatic


class HintGuide(Guide):
    """Painted hints: the network reads the photo on the hint grid; a hint model or the
    model-free propagation spreads the paint; at full strength painted pixels keep their
    colour exactly."""

    model_kind = ModelKind.HINT

    def __init__(self, pixels: np.ndarray, reference: Reference, strength: float, refine: bool):
        self.hints = reference.hints_over(pixels.shape[1], pixels.shape[0])
        self.lightness = lightness_at(pixels, HINT_GRID_SIDE)  # the photo on the hint grid
        self.strength, self.refine = strength, refine

    def network_lightness(self, pixels: np.ndarray, size: int, multiple: int) -> np.ndarray:
        return network_input(self.lightness, size, multiple)

    def predict(self, networks: Networks, entry: ModelEntry, small: np.ndarray) -> np.ndarray:
        automatic = None
        if entry.kind is ModelKind.AUTO:
            automatic = networks.run(entry, {LIGHTNESS: small})
            spread = spread_hints(self.lightness, automatic, self.hints)
        else:
            spread = networks.run(entry, self.model_inputs(small))
            if self.refine:  # what the model left between hint and colour, spread along edges
                spread = spread_hints(self.lightness, spread, self.hints)
        if self.strength >= 1.0:
            return spread
        if automatic is None:
            automatic = networks.automatic(small, spread.shape)
        automatic = resize_planes(automatic, spread.shape[2], spread.shape[1])
        return self.strength * spread + (1 - self.strength) * automatic

    def model_inputs(self, small: np.ndarray) -> dict[str, np.ndarray]:
        """A hint model's inputs: the hints on the network's grid beside the lightness."""
        height, width = small.shape[2:]
        grid = self.hints.on_grid(width, height)
        return {
            LIGHTNESS: small,
            HINT_AB: np.ascontiguousarray(grid.ab.transpose(2, 0, 1)[None]),
            HINT_MASK: grid.mask[None, None].astype(np.float32),
        }

    def exact(self) -> Hints | None:
        return self.hints if self.strength >= 1.0 else None


def guide_for(
    pixels: np.ndarray,
    reference: Reference | None,
    options: ColorizeOptions,
    refine_hints: bool = True,
) -> Guide:
    """The guide for a request: automatic without a reference, else its mode's."""
    if reference is None:
        return Guide()
    if reference.mode_for(options.reference_mode) is ReferenceMode.HINTS:
        return HintGuide(pixels, reference, options.strength, refine_hints)
    return ExemplarGuide(reference, options.strength)


def spread_hints(lightness: np.ndarray, ab: np.ndarray, hints: Hints) -> np.ndarray:
    """ab [2, h, w] moved to the hints, the change spread over the regions they were painted
    on; the result is on the grid of `lightness` [H, W] (the photo's, at most
    HINT_GRID_SIDE on the short side).

    The spread is solved on ab's small grid (propagate_hints), where it is global and
    cheap; the change is then brought to the fine grid by edge-aware upsampling guided by
    the fine lightness, so that it stops at the object's real boundary instead of
    bleeding a small-grid cell (tens of pixels in a large photo) across it.
    """
    height, width = lightness.shape
    ab_h, ab_w = ab.shape[1:]
    grid = hints.on_grid(ab_w, ab_h)
    coarse = resize_plane(lightness, ab_w, ab_h)
    change = propagate_hints(coarse, ab, grid.ab, grid.mask) - ab
    from colorize_backend.core.edge_filter import edge_aware_upsample  # compiled: hints only

    return resize_planes(ab, width, height) + edge_aware_upsample(change, lightness, SIGMA_R)


def _band_weights(lightness: np.ndarray, centres: np.ndarray, width: float) -> np.ndarray:
    """Soft membership [..., B] of each pixel in lightness bands (Gaussian, normalised)."""
    w = np.exp(-((lightness[..., None] - centres) ** 2) / (2 * width**2)) + 1e-6
    return w / w.sum(axis=-1, keepdims=True)


def transfer_exemplar(
    lightness: np.ndarray, ab: np.ndarray, exemplar_lab: np.ndarray, strength: float = 1.0
) -> np.ndarray:
    """Per-lightness-band mean/std transfer of ab [2, h, w] towards the exemplar's statistics."""
    target_l = exemplar_lab[..., 0].ravel()
    target_ab = exemplar_lab[..., 1:].reshape(-1, 2)
    source_ab = ab.reshape(2, -1).T
    centres = np.percentile(lightness, np.linspace(10, 90, BANDS)).astype(np.float32)
    width = max(float(np.std(lightness)) / 2, 4.0)
    w_src = _band_weights(lightness.ravel(), centres, width)
    w_ref = _band_weights(target_l, centres, width)
    out = np.zeros_like(source_ab)
    for band in range(BANDS):
        ws, wr = w_src[:, band : band + 1], w_ref[:, band : band + 1]
        mu_s = (ws * source_ab).sum(0) / ws.sum()
        sd_s = np.sqrt((ws * (source_ab - mu_s) ** 2).sum(0) / ws.sum()) + 1.0
        mu_r = (wr * target_ab).sum(0) / wr.sum()
        sd_r = np.sqrt((wr * (target_ab - mu_r) ** 2).sum(0) / wr.sum()) + 1.0
        out += ws * ((source_ab - mu_s) * (sd_r / sd_s) + mu_r)
    blended = (1 - strength) * source_ab + strength * out
    return blended.T.reshape(ab.shape).astype(np.float32)


def propagate_hints(
    lightness: np.ndarray,
    ab: np.ndarray,
    hint_ab: np.ndarray,
    hint_mask: np.ndarray,
    decay: float = 1e-4,
    sigma: float = HINT_SIGMA,
) -> np.ndarray:
    """Solve for ab [2, h, w] that equals the hints where given and follows L-edges elsewhere.

    Minimises sum_rs w_rs (x_r - x_s)^2 + decay * sum_r x_r^2 for the residual x = ab - prediction
    over 8-neighbours, with w_rs = exp(-(L_r - L_s)^2 / 2 sigma^2): neighbours of similar
    lightness share colour, and a lightness edge of a few sigma stops it.
    """
    import scipy.sparse as sparse  # a hint's work only: not loaded for automatic colour
    import scipy.sparse.linalg as sparse_linalg

    h, w = lightness.shape
    n = h * w
    index = np.arange(n).reshape(h, w)
    flat_l = lightness.ravel()
    rows, cols, vals = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        src = index[: h - dy, max(0, -dx) : w - max(0, dx)]
        dst = index[dy:, max(0, dx) : w + min(0, dx)]
        weight = np.exp(-((flat_l[src.ravel()] - flat_l[dst.ravel()]) ** 2) / (2 * sigma**2))
        rows += [src.ravel(), dst.ravel()]
        cols += [dst.ravel(), src.ravel()]
        vals += [weight, weight]
    adjacency = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    system = (sparse.diags(degree + decay) - adjacency).tocsr()
    known = hint_mask.ravel()
    unknown = ~known
    residual = (hint_ab.reshape(n, 2) - ab.reshape(2, n).T)[known]
    solve = sparse_linalg.factorized(system[unknown][:, unknown].tocsc())
    coupling = system[unknown][:, known]
    out = np.zeros((n, 2), dtype=np.float64)
    out[known] = residual
    for c in range(2):
        out[unknown, c] = solve(-coupling @ residual[:, c])
    return (ab + out.T.reshape(2, h, w)).astype(np.float32)
