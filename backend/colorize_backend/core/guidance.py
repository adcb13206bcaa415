"""Steering the colour with a reference: one entry per reference mode.

With a model trained for the reference (kind `exemplar` or `hint`) guidance prepares its
inputs; without one, two model-free methods steer the automatic prediction:
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

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg

from colorize_backend.core.contract import ModelKind
from colorize_backend.core.edge_filter import edge_aware_upsample
from colorize_backend.core.manifest import ModelEntry
from colorize_backend.core.planes import resize_plane, resize_planes
from colorize_backend.core.reference import Hints, Reference

BANDS = 5
HINT_GRID_SIDE = 768  # short side of the grid hints spread on (thin edges survive there)
SIGMA_R = 4.0  # L units: on the fine grid, a lightness step of a few of these stops colour
HINT_SIGMA = 1.5  # L units: on the small grid, cells 4-5 L apart hardly share colour


def steer_with_exemplar(
    lightness: np.ndarray, ab: np.ndarray, reference: Reference, strength: float
) -> np.ndarray:
    """Model-free: the automatic ab [2, h, w] moved towards the exemplar's colours.

    lightness is the network input [h0, w0]; ab may be smaller (the model's output)."""
    working_l = resize_plane(lightness, ab.shape[2], ab.shape[1])
    return transfer_exemplar(working_l, ab, reference.exemplar_lab(), strength)


def steer_with_hints(
    lightness: np.ndarray, ab: np.ndarray, hints: Hints, strength: float
) -> np.ndarray:
    """Model-free: the automatic ab moved to the hints and the change spread along edges,
    at the size of `lightness` (the photo's lightness on the hint grid)."""
    spread = spread_hints(lightness, ab, hints)
    if strength >= 1.0:
        return spread
    return strength * spread + (1 - strength) * resize_planes(ab, *lightness.shape[::-1])


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
    return resize_planes(ab, width, height) + edge_aware_upsample(change, lightness, SIGMA_R)


def model_inputs(
    entry: ModelEntry, small: np.ndarray, reference: Reference, hints: Hints | None
) -> dict[str, np.ndarray]:
    """A guided model's contract inputs beside the network-size lightness `small`."""
    if entry.kind is ModelKind.EXEMPLAR:
        ref_lab = reference.exemplar_lab(entry.input_size, entry.multiple).transpose(2, 0, 1)
        return {"L": small, "ref_lab": np.ascontiguousarray(ref_lab[None])}
    assert hints is not None, "a hint model needs hints"
    height, width = small.shape[2:]
    grid = hints.on_grid(width, height)
    return {
        "L": small,
        "hint_ab": np.ascontiguousarray(grid.ab.transpose(2, 0, 1)[None]),
        "hint_mask": grid.mask[None, None].astype(np.float32),
    }


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
