"""Validation photos as the evaluators use them: a spread subset, the ground truth at a
fixed size, its black-and-white version, and references made from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from colorize_backend.core.color import lab_to_u8, rgb_to_lab
from PIL import Image

SIZE = 256
HINT_POINTS = 10


def spread_subset(files: list[Path], limit: int | None) -> list[Path]:
    """`limit` photos evenly spread over the (sorted) list, so every folder is represented."""
    if not limit or limit >= len(files):
        return files
    return [files[i] for i in np.linspace(0, len(files) - 1, limit).astype(int)]


def ground_truth(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC))


def grey_version(rgb: np.ndarray) -> np.ndarray:
    """The photo as a black-and-white print: its own CIE L, no chroma, 1 channel u8."""
    lightness = rgb_to_lab(rgb.astype(np.float32) / 255.0)[..., 0]
    return lab_to_u8(lightness, np.zeros(lightness.shape + (2,), np.float32))[..., :1]


def recropped_and_flipped(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """70-90 % of a square photo's side, anywhere, mirrored, back at its size: how a user
    might re-frame the same scene."""
    size = truth.shape[0]
    side = int(size * rng.uniform(0.7, 0.9))
    top, left = rng.integers(0, size - side + 1, size=2)
    crop = Image.fromarray(truth[top : top + side, left : left + side]).resize((size, size))
    return np.asarray(crop)[:, ::-1].copy()


def point_hints(truth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A transparent layer holding HINT_POINTS single ground-truth pixels, and their positions."""
    layer = np.zeros((SIZE, SIZE, 4), np.uint8)
    points = rng.integers(8, SIZE - 8, size=(HINT_POINTS, 2))
    layer[points[:, 0], points[:, 1], :3] = truth[points[:, 0], points[:, 1]]
    layer[points[:, 0], points[:, 1], 3] = 255
    return layer, points
