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

from backend.color import rgb_to_lab

LOG = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def list_images(root: Path) -> list[Path]:
    """All image files below root, sorted for reproducibility."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


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
    """Random-crop, flip and rescale cached photos into Lab training batches.

    `extra` adds a third tensor to each batch: "reference", a second, independently
    cropped and flipped view of every photo in Lab (what an exemplar-guided network
    learns from), or "rgb", the colour crop itself in [0, 1] (for a teacher classifier).
    """

    def __init__(
        self,
        images: np.ndarray,
        crop: int,
        batch_size: int,
        seed: int = 0,
        extra: str | None = None,
    ):
        self.images = images
        self.crop = crop
        self.batch_size = batch_size
        self.extra = extra
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, seed: int, skip: int = 0):
        """The batches of one epoch (a fixed shuffle per seed), from batch `skip` on."""
        self.rng = np.random.default_rng(seed)
        order = self.rng.permutation(len(self.images))
        for start in range(
            skip * self.batch_size, len(order) - self.batch_size + 1, self.batch_size
        ):
            yield self.batch(order[start : start + self.batch_size])

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, ...]:
        """(L [B,1,H,W] in 0..100, ab [B,2,H,W]) plus the `extra` tensor if one is asked for."""
        views = [self._augment(self.images[i]) for i in indices]
        lightness, ab = _to_lab(views)
        if self.extra == "rgb":
            rgb = torch.from_numpy(np.stack(views).astype(np.float32) / 255.0)
            return lightness, ab, rgb.permute(0, 3, 1, 2).contiguous()
        if self.extra == "reference":
            ref_l, ref_ab = _to_lab([self._augment(self.images[i]) for i in indices])
            return lightness, ab, torch.cat([ref_l, ref_ab], dim=1)
        return lightness, ab

    def _augment(self, rgb: np.ndarray) -> np.ndarray:
        size = rgb.shape[0]
        side = int(size * self.rng.uniform(0.6, 1.0))
        top, left = self.rng.integers(0, size - side + 1, size=2)
        crop = torch.from_numpy(np.ascontiguousarray(rgb[top : top + side, left : left + side]))
        crop = crop.permute(2, 0, 1)[None].float()
        crop = F.interpolate(
            crop, size=(self.crop, self.crop), mode="bilinear", antialias=True, align_corners=False
        )
        out = crop[0].permute(1, 2, 0).clamp(0, 255).numpy()
        if self.rng.random() < 0.5:
            out = out[:, ::-1]
        return out


def _to_lab(rgb_images: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lab = torch.from_numpy(rgb_to_lab(np.stack(rgb_images).astype(np.float32) / 255.0))
    lab = lab.permute(0, 3, 1, 2).contiguous()
    return lab[:, :1], lab[:, 1:]


def evaluation_batches(images: np.ndarray, batch_size: int):
    """Whole cached photos, in order, as (L, ab) batches for validation loss."""
    for start in range(0, len(images), batch_size):
        yield _to_lab(list(np.asarray(images[start : start + batch_size], dtype=np.float32)))
