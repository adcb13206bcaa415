"""Training photos as Lab tensors: cached decode per source, weighted sampling, augmentation.

Decoding tens of thousands of JPEGs every epoch would dominate CPU training time, so
each photo is decoded once, resized to a fixed square and cached as u8 RGB in one
.npy file per source folder (memory-mapped afterwards); augmentation then works on
the cache. Photos are drawn by the group shares of training.sources.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from colorize_backend.core.atomic_file import replaced_on_success
from colorize_backend.tools.files import IMAGE_SUFFIXES, list_images
from PIL import Image

from training.color_torch import rgb_to_lab
from training.metrics import colorfulness
from training.sources import sampling_probabilities

LOG = logging.getLogger(__name__)


def is_grey(rgb: np.ndarray, tolerance: int = 3) -> bool:
    """True when the photo carries no colour (R = G = B up to JPEG noise)."""
    signed = rgb.astype(np.int16)
    spread = np.abs(signed[..., 0] - signed[..., 1]) + np.abs(signed[..., 1] - signed[..., 2])
    return float(np.mean(spread)) < tolerance


def load_square(path: Path, size: int) -> np.ndarray:
    """Decode, resize the short side to size and centre-crop to size x size."""
    with Image.open(path) as opened:
        im = opened.convert("RGB")
        scale = size / min(im.size)
        w, h = max(size, round(im.width * scale)), max(size, round(im.height * scale))
        im = im.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
        left, top = (w - size) // 2, (h - size) // 2
        return np.asarray(im.crop((left, top, left + size, top + size)))


def _load_colour_square(job: tuple[Path, int]) -> np.ndarray | None:
    rgb = load_square(*job)
    return None if is_grey(rgb) else rgb


def source_folders(root: Path) -> dict[str, list[Path]]:
    """Photos per source: each sub-folder of root is a source; loose files form one named
    after root."""
    root = Path(root)
    sources = {}
    loose = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if loose:
        sources[root.name] = loose
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = list_images(folder)
        if files:
            sources[folder.name] = files
    return sources


def cached_source(name: str, files: list[Path], size: int, cache_dir: Path) -> np.ndarray:
    """[N, size, size, 3] u8 of the colour photos among files, decoded once and memory-mapped."""
    key = hashlib.sha1(("\n".join(map(str, files)) + f"|{size}").encode()).hexdigest()[:12]
    cache = Path(cache_dir) / f"{name}-{size}-{key}.npy"
    if not cache.exists():
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            decoded = list(pool.map(_load_colour_square, ((f, size) for f in files), chunksize=64))
        kept = [rgb for rgb in decoded if rgb is not None]
        LOG.info(
            "cached %d photos of %s (%d grey skipped)", len(kept), name, len(files) - len(kept)
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        with replaced_on_success(cache) as partial, partial.open("wb") as file:
            np.save(file, np.stack(kept) if kept else np.zeros((0, size, size, 3), np.uint8))
    return np.load(cache, mmap_mode="r")


@dataclass
class PhotoSet:
    """Cached square photos of one or more data roots, and the source each photo came from."""

    arrays: list[np.ndarray]  # per source: [n, S, S, 3] u8
    names: list[str]  # per source: folder name

    @classmethod
    def load(cls, roots: list[Path], size: int, cache_dir: Path) -> PhotoSet:
        arrays, names = [], []
        for root in roots:
            for name, files in source_folders(root).items():
                arrays.append(cached_source(name, files, size, cache_dir))
                names.append(name)
        return cls(arrays, names)

    @classmethod
    def of(cls, images: np.ndarray, name: str = "photos") -> PhotoSet:
        return cls([images], [name])

    def __post_init__(self) -> None:
        counts = [len(a) for a in self.arrays]
        self.sources = np.repeat(np.arange(len(counts)), counts)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])[:-1].astype(np.int64)

    def __len__(self) -> int:
        return len(self.sources)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Photos by global index, as one [B, S, S, 3] u8 array in the order asked."""
        indices = np.asarray(indices, dtype=np.int64)
        sources = self.sources[indices]
        out = np.empty((len(indices), *self.arrays[0].shape[1:]), np.uint8)
        for source in np.unique(sources):
            here = np.flatnonzero(sources == source)
            local = indices[here] - self.offsets[source]
            order = np.argsort(local)  # sorted reads are kinder to a memory-mapped file
            out[here[order]] = self.arrays[source][local[order]]
        return out

    def spread(self, limit: int | None) -> np.ndarray:
        """`limit` indices spread evenly over every source (all of them without a limit)."""
        if not limit or limit >= len(self):
            return np.arange(len(self))
        return np.linspace(0, len(self) - 1, limit).astype(np.int64)

    def probabilities(self, min_colourfulness: float = 0.0) -> np.ndarray:
        """Per-photo draw probability by group share; photos whose colourfulness is below
        `min_colourfulness` are never drawn (almost-grey photos teach grey)."""
        probabilities = sampling_probabilities(self.sources, self.names)
        if min_colourfulness > 0:
            kept = self.colourfulness() >= min_colourfulness
            LOG.info(
                "%d of %d photos below colourfulness %.0f never drawn",
                int((~kept).sum()),
                len(kept),
                min_colourfulness,
            )
            probabilities = probabilities * kept
            probabilities /= probabilities.sum()
        return probabilities

    def colourfulness(self) -> np.ndarray:
        """Hasler & Süsstrunk colourfulness of every photo (on every 4th pixel)."""
        return np.array(
            [colorfulness(photo[::4, ::4]) for array in self.arrays for photo in array],
            dtype=np.float32,
        )


class LabBatches:
    """Random-crop, flip and rescale cached photos into Lab training batches, on `device`.

    An epoch is len(photos) draws by the sources' group shares (with replacement), in a fixed
    order per seed, so a resumed run continues the same sequence. Every batch is cropped with
    one affine grid sample and converted to Lab on the device.

    `extra` adds a third tensor to each batch: "reference", a second, independently
    cropped and flipped view of every photo in Lab (what an exemplar-guided network
    learns from), or "rgb", the colour crop itself in [0, 1] (for a teacher classifier).
    `photo_weights` (one number per photo) adds a last tensor, each drawn photo's number
    (e.g. how strongly a loss term counts for its source).
    """

    def __init__(
        self,
        photos: PhotoSet,
        crop: int,
        batch_size: int,
        extra: str | None = None,
        device: str | torch.device = "cpu",
        min_scale: float = 0.6,
        min_colourfulness: float = 0.0,
        photo_weights: np.ndarray | None = None,
    ):
        self.photos = photos
        self.photo_weights = photo_weights
        self.crop = crop
        self.batch_size = batch_size
        self.extra = extra
        self.device = torch.device(device)
        self.min_scale = min_scale
        self.probabilities = torch.from_numpy(photos.probabilities(min_colourfulness))
        self.generator = torch.Generator(device="cpu")

    def __len__(self) -> int:
        return len(self.photos) // self.batch_size

    def epoch(self, seed: int, skip: int = 0):
        """The batches of one epoch (a fixed draw per seed), from batch `skip` on."""
        self.generator.manual_seed(seed)
        draws = torch.multinomial(
            self.probabilities, len(self) * self.batch_size, True, generator=self.generator
        )
        for start in range(skip * self.batch_size, len(draws), self.batch_size):
            yield self.batch(draws[start : start + self.batch_size])

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(L [B,1,H,W] in 0..100, ab [B,2,H,W]) plus the `extra` tensor if one is asked for,
        plus the photos' weights [B] if there are any."""
        photos = torch.from_numpy(self.photos.take(indices.numpy())).to(self.device)
        photos = photos.permute(0, 3, 1, 2).float() / 255.0
        rgb = self._random_views(photos)
        lab = rgb_to_lab(rgb)
        batch: tuple[torch.Tensor, ...] = (lab[:, :1], lab[:, 1:])
        if self.extra == "rgb":
            batch += (rgb,)
        elif self.extra == "reference":
            batch += (rgb_to_lab(self._random_views(photos)),)
        if self.photo_weights is not None:
            weights = self.photo_weights[indices.numpy()]
            batch += (torch.from_numpy(weights).float().to(self.device),)
        return batch

    def _random_views(self, photos: torch.Tensor) -> torch.Tensor:
        """Each photo cropped to min_scale-100 % of its side at a random place, maybe mirrored."""
        n = len(photos)
        scale = torch.empty(n).uniform_(self.min_scale, 1.0, generator=self.generator)
        shift = (torch.rand(n, 2, generator=self.generator) * 2 - 1) * (1 - scale)[:, None]
        flip = torch.where(torch.rand(n, generator=self.generator) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(
            theta.to(photos.device), [n, 3, self.crop, self.crop], align_corners=False
        )
        return F.grid_sample(photos, grid, mode="bilinear", align_corners=False).clamp(0, 1)


def evaluation_batches(photos: PhotoSet, indices: np.ndarray, batch_size: int, size: int = 0):
    """Whole cached photos (resized to `size` if given), in order, as (L, ab) batches."""
    for start in range(0, len(indices), batch_size):
        rgb = torch.from_numpy(photos.take(indices[start : start + batch_size]))
        rgb = rgb.permute(0, 3, 1, 2).float() / 255.0
        if size and size != rgb.shape[-1]:
            rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True)
        lab = rgb_to_lab(rgb.clamp(0, 1))
        yield lab[:, :1], lab[:, 1:]
