"""Training photos as Lab tensors: folder scan, grey filtering, cached decode, augmentation.

Decoding thousands of JPEGs every epoch would dominate CPU training time, so
each image is decoded once, resized to a fixed square and cached as u8 RGB in
a .npy file; augmentation then works on the cache.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backend.images import list_images
from training.color_torch import rgb_to_lab

LOG = logging.getLogger(__name__)


def is_grey(rgb: np.ndarray, tolerance: int = 3) -> bool:
    """True when the photo carries no colour (R = G = B up to JPEG noise)."""
    signed = rgb.astype(np.int16)
    spread = np.abs(signed[..., 0] - signed[..., 1]) + np.abs(signed[..., 1] - signed[..., 2])
    return float(np.mean(spread)) < tolerance


def load_square(path: Path, size: int) -> np.ndarray:
    """Decode, resize the short side to size and centre-crop to size x size."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = size / min(im.size)
        w, h = max(size, round(im.width * scale)), max(size, round(im.height * scale))
        im = im.resize((w, h), Image.BICUBIC)
        left, top = (w - size) // 2, (h - size) // 2
        return np.asarray(im.crop((left, top, left + size, top + size)))


def build_cache(root: Path, size: int, cache_dir: Path) -> np.ndarray:
    """Return an [N, size, size, 3] u8 array of the colour photos under root."""
    files = list_images(root)
    key = hashlib.sha1(("\n".join(map(str, files)) + f"|{size}").encode()).hexdigest()[:12]
    cache = Path(cache_dir) / f"{Path(root).name}-{size}-{key}.npy"
    if cache.exists():
        return np.load(cache, mmap_mode="r")
    images, skipped = [], 0
    for path in files:
        rgb = load_square(path, size)
        if is_grey(rgb):
            skipped += 1
            continue
        images.append(rgb)
    LOG.info("cached %d photos from %s (%d grey skipped)", len(images), root, skipped)
    cache.parent.mkdir(parents=True, exist_ok=True)
    array = np.stack(images)
    np.save(cache, array)
    return array


class LabBatches:
    """Random-crop, flip and rescale cached photos into Lab training batches, on `device`.

    The whole cache lives on the device as u8 and every batch is cropped with one
    affine grid sample and converted to Lab there, so a GPU is not starved by
    per-image work on the CPU.

    `extra` adds a third tensor to each batch: "reference", a second, independently
    cropped and flipped view of every photo in Lab (what an exemplar-guided network
    learns from), or "rgb", the colour crop itself in [0, 1] (for a teacher classifier).
    """

    def __init__(
        self,
        images: np.ndarray,
        crop: int,
        batch_size: int,
        extra: str | None = None,
        device: str | torch.device = "cpu",
    ):
        self.images = torch.from_numpy(np.array(images)).to(device)  # copy out of the mmap
        self.crop = crop
        self.batch_size = batch_size
        self.extra = extra
        self.generator = torch.Generator(device="cpu")

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, seed: int, skip: int = 0):
        """The batches of one epoch (a fixed shuffle per seed), from batch `skip` on."""
        self.generator.manual_seed(seed)
        order = torch.randperm(len(self.images), generator=self.generator)
        for start in range(
            skip * self.batch_size, len(order) - self.batch_size + 1, self.batch_size
        ):
            yield self.batch(order[start : start + self.batch_size])

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(L [B,1,H,W] in 0..100, ab [B,2,H,W]) plus the `extra` tensor if one is asked for."""
        photos = self.images[indices.to(self.images.device)].permute(0, 3, 1, 2).float() / 255.0
        rgb = self._random_views(photos)
        lab = rgb_to_lab(rgb)
        if self.extra == "rgb":
            return lab[:, :1], lab[:, 1:], rgb
        if self.extra == "reference":
            return lab[:, :1], lab[:, 1:], rgb_to_lab(self._random_views(photos))
        return lab[:, :1], lab[:, 1:]

    def _random_views(self, photos: torch.Tensor) -> torch.Tensor:
        """Each photo cropped to 60-100 % of its side at a random place, maybe mirrored."""
        n = len(photos)
        scale = torch.empty(n).uniform_(0.6, 1.0, generator=self.generator)
        shift = (torch.rand(n, 2, generator=self.generator) * 2 - 1) * (1 - scale)[:, None]
        flip = torch.where(torch.rand(n, generator=self.generator) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(
            theta.to(photos.device), [n, 3, self.crop, self.crop], align_corners=False
        )
        return F.grid_sample(photos, grid, mode="bilinear", align_corners=False).clamp(0, 1)


def evaluation_batches(images: np.ndarray, batch_size: int):
    """Whole cached photos, in order, as (L, ab) batches for validation loss."""
    for start in range(0, len(images), batch_size):
        photos = torch.from_numpy(np.array(images[start : start + batch_size]))
        lab = rgb_to_lab(photos.permute(0, 3, 1, 2).float() / 255.0)
        yield lab[:, :1], lab[:, 1:]
