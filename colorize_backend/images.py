"""Reading and writing image files for the CLI: u8 arrays with 1-4 channels."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def read_image(path: Path) -> np.ndarray:
    """Decode to [H, W, C] u8, honouring EXIF orientation; keeps alpha, greys stay 1 channel."""
    with Image.open(path) as opened:
        im: Image.Image = ImageOps.exif_transpose(opened)
        if im.mode in ("L", "LA", "RGB", "RGBA"):
            pass
        elif im.mode in ("I;16", "I", "F"):
            im = im.convert("L")
        elif "A" in im.getbands() or "transparency" in im.info:
            im = im.convert("RGBA")
        else:
            im = im.convert("RGB")
        array = np.asarray(im)
    return array[..., None] if array.ndim == 2 else array


def write_image(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = {3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    image = Image.fromarray(pixels, mode)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.convert("RGB").save(path, quality=95)
    else:
        image.save(path)


def list_images(root: Path) -> list[Path]:
    """All image files below root, sorted for reproducibility."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Files, folders (their images, recursively) and globs → sorted unique image paths."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found.extend(list_images(path))
        elif path.is_file():
            found.append(path)
        else:
            found.extend(
                Path(p)
                for p in sorted(glob.glob(pattern, recursive=True))
                if Path(p).suffix.lower() in IMAGE_SUFFIXES
            )
    unique = list(dict.fromkeys(found))
    if not unique:
        raise FileNotFoundError(f"no images found in {patterns}")
    return unique


def output_path(source: Path, inputs_root: Path | None, out: Path, many: bool) -> Path:
    """Where a result goes: OUT itself for one file, OUT/<relative name>.png for several."""
    if not many and out.suffix.lower() in IMAGE_SUFFIXES:
        return out
    relative = source.relative_to(inputs_root) if inputs_root else Path(source.name)
    return out / relative.with_suffix(".png")
