"""Steering the colour with a reference layer, without any trained model.

Two model-free methods that always work:
- exemplar: move the automatic prediction's chroma statistics towards the
  exemplar's, separately per lightness band (soft bands, no seams), so that a
  blue sky in the exemplar tints bright regions, not faces;
- hints: propagate painted colours along lightness edges (Levin, Lischinski &
  Weiss 2004, "Colorization using Optimization"), solved as a sparse linear
  system at the network's working size. The propagated quantity is the
  difference between hint and prediction, screened by a small decay term, so
  a hint affects its similar-looking neighbourhood and fades beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg

from colorize_backend.color import rgb_to_lab
from colorize_backend.pipeline import alpha_channel, colour_channels, network_size, resize_plane

HINT_MODE_MAX_COVERAGE = 0.5  # a reference mostly transparent → painted hints
BANDS = 5


@dataclass
class Reference:
    """A reference layer: pixels ([H, W, C] u8), how to read them, offset from the source."""

    pixels: np.ndarray
    mode: str = "auto"  # auto | exemplar | hints
    offset: tuple[int, int] = (0, 0)  # reference origin minus source origin, in pixels

    def resolved_mode(self) -> str:
        if self.mode != "auto":
            return self.mode
        if self.pixels.shape[2] in (2, 4):
            coverage = float(np.mean(self.pixels[..., -1] > 0))
            if coverage < HINT_MODE_MAX_COVERAGE:
                return "hints"
        return "exemplar"


def _as_rgb(colour: np.ndarray) -> np.ndarray:
    """Grey (1 channel) or RGB (3) u8 → RGB, along the last axis."""
    return colour if colour.shape[-1] == 3 else np.repeat(colour, 3, axis=-1)


def reference_lab(pixels: np.ndarray, short_side: int = 256, multiple: int = 32) -> np.ndarray:
    """An exemplar photo as [h, w, 3] Lab at the network's working size (sides multiples)."""
    rgb = _as_rgb(colour_channels(pixels))
    w, h = network_size(rgb.shape[1], rgb.shape[0], short_side, multiple)
    planes = [resize_plane(rgb[..., c].astype(np.float32), w, h) for c in range(3)]
    return rgb_to_lab(np.clip(np.stack(planes, axis=-1) / 255.0, 0, 1))


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


def hints_at(reference: Reference, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Hint ab [H, W, 2] and mask [H, W] in source coordinates (mapped through the offsets)."""
    pixels = reference.pixels
    alpha = alpha_channel(pixels)
    ys, xs = (
        np.nonzero(alpha[..., 0] > 0)
        if alpha is not None
        else np.indices(pixels.shape[:2]).reshape(2, -1)
    )
    xs_src, ys_src = xs + reference.offset[0], ys + reference.offset[1]
    inside = (xs_src >= 0) & (xs_src < width) & (ys_src >= 0) & (ys_src < height)
    ys, xs, xs_src, ys_src = ys[inside], xs[inside], xs_src[inside], ys_src[inside]
    rgb = _as_rgb(colour_channels(pixels)[ys, xs])
    ab = np.zeros((height, width, 2), dtype=np.float32)
    mask = np.zeros((height, width), dtype=bool)
    ab[ys_src, xs_src] = rgb_to_lab(rgb.astype(np.float32) / 255.0)[:, 1:]
    mask[ys_src, xs_src] = True
    return ab, mask


def propagate_hints(
    lightness: np.ndarray,
    ab: np.ndarray,
    hint_ab: np.ndarray,
    hint_mask: np.ndarray,
    decay: float = 1e-4,
    sigma: float = 4.0,
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


def small_hints(
    hint_ab: np.ndarray, hint_mask: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution hints → the working grid: each hinted cell takes its hints' mean ab."""
    full_h, full_w = hint_mask.shape
    ys, xs = np.nonzero(hint_mask)
    cells = (ys * height // full_h) * width + (xs * width // full_w)
    counts = np.bincount(cells, minlength=width * height)
    ab = np.stack(
        [np.bincount(cells, hint_ab[ys, xs, c], minlength=width * height) for c in range(2)],
        axis=-1,
    )
    mask = counts > 0
    ab[mask] /= counts[mask, None]
    return ab.reshape(height, width, 2).astype(np.float32), mask.reshape(height, width)
