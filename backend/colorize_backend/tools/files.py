"""Which files are photos: suffixes, folders walked, globs expanded (no image library
needed, so that training code on a bare machine can list photos too)."""

from __future__ import annotations

import glob
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def list_images(root: Path) -> list[Path]:
    """All image files below root, sorted for reproducibility (hidden files skipped)."""
    return sorted(
        p
        for p in Path(root).rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


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
